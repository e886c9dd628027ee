"""Hostile input, as a table: every row is sent to each ingress on each path (translated to the other API, and
same-API pass-through) through the real server, and the answer must be a clear error or a success — never a 5xx,
never a non-JSON body, never a traceback, and every error in the caller's own format.

Rows: depth (past orjson's 254-level encoder limit, and past its 1024-level parser limit), size (Content-Length
and chunked, past GATEWAY_MAX_BODY_BYTES = 2 MB in the test server), encoding (invalid UTF-8, UTF-16, a BOM),
content types, duplicate keys, huge numbers, NaN/Infinity, 50,000 messages, a 10 MB string, and every top-level
field with every wrong JSON type. Issue 14's regressions (stream_options not an object, max_tokens -5 and
stream "yes" on pass-through, chunked bodies over the limit, 405s) have exact expectations.
"""

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}
# (ingress, path name, url path, model): the model decides the path (tests/e2e/conftest.py routes).
PATHS = [
    ("anthropic", "passthrough", "/v1/messages", "gw-anthropic"),
    ("anthropic", "translated", "/v1/messages", "gw-openai"),
    ("openai", "passthrough", "/v1/chat/completions", "gw-openai"),
    ("openai", "translated", "/v1/chat/completions", "gpt-hostile"),
    ("responses", "translated", "/v1/responses", "gw-openai"),
]
PATH_IDS = [f"{ingress}-{kind}" for ingress, kind, _, _ in PATHS]
LIMIT = 2 * 1024 * 1024  # tests/conftest.py start_gateway


def base_body(ingress: str, model: str) -> dict:
    if ingress == "responses":
        return {"model": model, "input": "SAY: ok", "max_output_tokens": 50, "store": False}
    body = {"model": model, "messages": [{"role": "user", "content": "SAY: ok"}], "max_tokens": 50}
    return body


def headers_for(world, ingress: str, **extra) -> dict:
    key = world.keys["alpha"]
    if ingress == "anthropic":
        return {"x-api-key": key, **ANTHROPIC_HEADERS, "content-type": "application/json", **extra}
    return {"authorization": f"Bearer {key}", "content-type": "application/json", **extra}


def assert_clean(ingress: str, response: httpx.Response, *, status: int | None = None) -> None:
    """Not a 5xx, JSON (or a 200 stream), no traceback; an error is in the caller's format."""
    context = f"{response.status_code} {response.text[:300]!r}"
    assert response.status_code < 500, context
    if status is not None:
        assert response.status_code == status, context
    assert "Traceback" not in response.text and 'File "/' not in response.text, context
    if response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream"):
        return  # e.g. `stream: true`, a right type in a row of wrong ones
    assert response.headers["content-type"].startswith("application/json"), context
    assert_error_format(ingress, response, context)


def assert_error_format(ingress: str, response: httpx.Response, context: str = "") -> None:
    body = response.json()
    if response.status_code < 400:
        return
    if ingress == "anthropic":
        assert body["type"] == "error" and isinstance(body["error"]["message"], str), context
        assert body["error"]["type"].endswith("_error") or body["error"]["type"] == "request_too_large", context
    else:
        assert isinstance(body["error"]["message"], str) and "type" in body["error"], context


def post(world, ingress: str, path: str, content, **headers) -> httpx.Response:
    return httpx.post(world.url + path, content=content, headers=headers_for(world, ingress, **headers), timeout=60)


def post_all(world, ingress: str, path: str, bodies: list[tuple[bytes, dict]]) -> list[httpx.Response]:
    """Every body, 6 at a time on kept-alive connections (a row table is hundreds of requests)."""
    with httpx.Client(base_url=world.url, timeout=60) as client, ThreadPoolExecutor(6) as pool:
        send = lambda item: client.post(path, content=item[0], headers=headers_for(world, ingress, **item[1]))  # noqa: E731
        return list(pool.map(send, bodies))


def with_field(body: dict, name: str, raw_value: bytes) -> bytes:
    """`body` as JSON with one more field whose value is written as given (json.dumps recurses on deep values)."""
    return json.dumps(body).encode()[:-1] + b', "' + name.encode() + b'": ' + raw_value + b"}"


def deep_json(depth: int) -> bytes:
    return b'{"k": [' * (depth // 2) + b'"deep"' + b"]}" * (depth // 2)


# --- rows of raw bodies -----------------------------------------------------------------------------------


def raw_rows(ingress: str, model: str) -> list[tuple[str, bytes, dict, int | None]]:
    """(row id, body bytes, extra headers, expected status or None for "any non-5xx")."""
    body = base_body(ingress, model)
    plain = json.dumps(body).encode()
    text_field = "input" if ingress == "responses" else "messages"
    many = [{"role": "user" if i % 2 == 0 else "assistant", "content": "x"} for i in range(49_999)]
    many_messages = {**body, "messages": many + [{"role": "user", "content": "SAY: ok"}]}
    if ingress == "responses":
        many_messages = {**body, "input": [{"role": "user", "content": "x"} for _ in range(50_000)]}
    return [
        ("metadata-300-deep", with_field(body, "metadata", deep_json(300)), {}, None),
        ("message-300-deep", _deep_message(ingress, body, 300), {}, None),
        ("2000-deep", with_field(body, "x", deep_json(2000)), {}, 400),
        ("invalid-utf8", plain[:-1] + b', "z": "\xff\xfe"}', {}, 400),
        ("utf16", json.dumps(body).encode("utf-16"), {}, 400),
        ("bom", b"\xef\xbb\xbf" + plain, {}, 400),
        ("text-plain", plain, {"content-type": "text/plain"}, None),
        ("form", plain, {"content-type": "application/x-www-form-urlencoded"}, None),
        ("multipart", plain, {"content-type": "multipart/form-data; boundary=x"}, None),
        ("no-content-type", plain, {"content-type": ""}, None),
        ("duplicate-keys", plain[:-1] + b', "model": "' + model.encode() + b'"}', {}, 200),
        ("huge-int", plain[:-1] + b', "temperature": 123456789012345678901234567890123456789}', {}, None),
        ("huge-float", plain[:-1] + b', "temperature": 1e400}', {}, 400),
        ("nan", plain[:-1] + b', "temperature": NaN}', {}, 400),
        ("infinity", plain[:-1] + b', "top_p": Infinity}', {}, 400),
        ("not-an-object", b"[1, 2, 3]", {}, 400),
        ("empty", b"", {}, 400),
        ("truncated", plain[:-5], {}, 400),
        ("50k-messages", json.dumps(many_messages).encode(), {}, None),
        ("10mb-string", json.dumps({**body, "metadata": {"x": "a" * 10_000_000}}).encode(), {}, 413),
        (f"{text_field}-just-under-limit", _padded(body, LIMIT - 1000), {}, None),
        (f"{text_field}-just-over-limit", _padded(body, LIMIT + 10), {}, 413),
    ]


def _deep_message(ingress: str, body: dict, depth: int) -> bytes:
    block = b'{"type": "' + (b"input_text" if ingress == "responses" else b"text") + b'", "text": "x", "d": '
    messages = b'[{"role": "user", "content": [' + block + deep_json(depth) + b"}]}]"
    rest = {k: v for k, v in body.items() if k not in ("messages", "input")}
    return with_field(rest, "input" if ingress == "responses" else "messages", messages)


def _padded(body: dict, size: int) -> bytes:
    raw = json.dumps({**body, "pad": ""}).encode()
    return raw[:-2] + b"a" * (size - len(raw)) + b'"}'


@pytest.mark.parametrize(("ingress", "kind", "path", "model"), PATHS, ids=PATH_IDS)
def test_hostile_bodies_get_clean_answers(world, ingress, kind, path, model):
    failures = []
    rows = raw_rows(ingress, model)
    responses = post_all(world, ingress, path, [(content, extra) for _, content, extra, _ in rows])
    for (row, content, extra, status), response in zip(rows, responses):
        try:
            assert_clean(ingress, response, status=status)
        except (AssertionError, KeyError, ValueError) as exc:
            failures.append(f"{row}: {exc!r} {response.status_code} {response.headers} {response.text[:200]!r}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(("ingress", "kind", "path", "model"), PATHS, ids=PATH_IDS)
def test_chunked_body_over_the_limit_is_413_in_the_callers_format(world, ingress, kind, path, model):
    def chunks():
        yield json.dumps(base_body(ingress, model)).encode()[:-1] + b', "pad": "'
        for _ in range(LIMIT // 65536 + 2):
            yield b"a" * 65536
        yield b'"}'

    response = httpx.post(world.url + path, content=chunks(), headers=headers_for(world, ingress), timeout=60)
    assert_clean(ingress, response, status=413)
    small = httpx.post(world.url + path, content=iter([json.dumps(base_body(ingress, model)).encode()]),
                       headers=headers_for(world, ingress), timeout=60)
    assert_clean(ingress, small, status=200)  # a chunked body under the limit is served


# --- every field with every wrong JSON type --------------------------------------------------------------

WRONG_VALUES = {"null": None, "string": "yes", "int": -5, "float": 1.5, "bool": True, "array": [1], "object": {"a": 1}}
FIELDS = {
    "anthropic": ["model", "messages", "max_tokens", "stream", "system", "temperature", "top_p", "top_k",
                  "stop_sequences", "tools", "tool_choice", "thinking", "metadata", "output_config"],
    "openai": ["model", "messages", "max_tokens", "max_completion_tokens", "stream", "stream_options",
               "temperature", "top_p", "stop", "tools", "tool_choice", "response_format", "reasoning_effort",
               "user", "n", "seed", "logit_bias"],
    "responses": ["model", "input", "instructions", "max_output_tokens", "stream", "stream_options", "tools",
                  "tool_choice", "reasoning", "text", "previous_response_id", "temperature", "store"],
}
# The fields the gateway relies on (proxy/validate.py): a wrong type there is a 400 on every path.
VALIDATED = {
    "anthropic": {"model": "string", "messages": "array", "max_tokens": "int", "stream": "bool"},
    "openai": {"model": "string", "messages": "array", "max_tokens": "int", "max_completion_tokens": "int",
               "stream": "bool", "stream_options": "object"},
    "responses": {"model": "string", "max_output_tokens": "int", "stream": "bool", "stream_options": "object"},
}
OPTIONAL_NULL_OK = {"max_tokens", "max_completion_tokens", "max_output_tokens", "stream", "stream_options"}


@pytest.mark.parametrize(("ingress", "kind", "path", "model"), PATHS, ids=PATH_IDS)
def test_every_field_with_every_wrong_type(world, ingress, kind, path, model):
    failures = []
    cases = [(field, type_name, value) for field in FIELDS[ingress] for type_name, value in WRONG_VALUES.items()]
    bodies = [(json.dumps({**base_body(ingress, model), field: value}).encode(), {}) for field, _, value in cases]
    for (field, type_name, value), response in zip(cases, post_all(world, ingress, path, bodies)):
        right = VALIDATED[ingress].get(field)
        expected = None
        if right is not None and type_name != right and not (type_name == "null" and field in OPTIONAL_NULL_OK):
            expected = 400
        if right == "int" and value == -5:
            expected = 400  # issue 14: max_tokens -5 reached the upstream on pass-through
        if field == "max_tokens" and ingress == "anthropic" and type_name == "null":
            expected = 400  # required by the Messages API
        try:
            assert_clean(ingress, response, status=expected)
            if expected == 400 and field != "messages":
                assert field in response.text, "the error names the field"
        except AssertionError as exc:
            failures.append(f"{field}={type_name}: {exc}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(("ingress", "kind", "path", "model"), PATHS[:4], ids=PATH_IDS[:4])
def test_messages_of_the_wrong_shape_are_400(world, ingress, kind, path, model):
    for messages in ([1], ["hi"], [None], [{"content": "x"}], [{"role": 5, "content": "x"}]):
        body = {**base_body(ingress, model), "messages": messages}
        assert_clean(ingress, post(world, ingress, path, json.dumps(body).encode()), status=400)


def test_same_api_passthrough_no_longer_forwards_bad_fields(world):
    """Issue 14: `max_tokens: -5` reached the upstream and `stream: "yes"` came back as a 502/500."""
    before = len(world.upstream_requests())
    for ingress, _, path, model in (PATHS[0], PATHS[2]):
        bad = [("max_tokens", -5), ("stream", "yes"), ("model", 7)] + [("stream_options", "yes")] * (ingress == "openai")
        for field, value in bad:
            response = post(world, ingress, path, json.dumps({**base_body(ingress, model), field: value}).encode())
            assert_clean(ingress, response, status=400)
            assert field in response.json()["error"]["message"]
    assert len(world.upstream_requests()) == before  # none of them reached the upstream


@pytest.mark.parametrize("stream", [False, True])
def test_stream_options_not_an_object_is_400_not_500(world, stream):
    body = {"model": "gw-openai", "messages": [{"role": "user", "content": "hi"}], "stream": stream,
            "stream_options": "include_usage"}
    response = post(world, "openai", "/v1/chat/completions", json.dumps(body).encode())
    assert_clean("openai", response, status=400)
    assert response.json()["error"]["param"] == "stream_options"


@pytest.mark.parametrize(("ingress", "kind", "path", "model"), PATHS, ids=PATH_IDS)
def test_json_nested_past_the_encoder_limit_is_400_on_every_path(world, ingress, kind, path, model):
    """orjson parses 1024 levels but writes 254: a body between the two used to parse, then fail as a 500 when
    the gateway wrote it out for the upstream (pure pass-through included)."""
    body = base_body(ingress, model)
    field = "metadata" if ingress == "anthropic" else "tools" if ingress == "openai" else "text"
    response = post(world, ingress, path, with_field(body, field, deep_json(400)))
    assert_clean(ingress, response)
    if kind == "passthrough":
        assert response.status_code == 400, response.text
        assert "nested too deeply" in response.text


@pytest.mark.parametrize(
    ("method", "path", "ingress"),
    [("GET", "/v1/messages", "anthropic"), ("PUT", "/v1/chat/completions", "openai"),
     ("DELETE", "/v1/messages/count_tokens", "anthropic"), ("PATCH", "/v1/responses", "responses"),
     ("POST", "/v1/models", "openai")],
)
def test_405_is_json_in_the_callers_format(world, method, path, ingress):
    response = httpx.request(method, world.url + path, headers=headers_for(world, ingress))
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert (body["type"] == "error") if ingress == "anthropic" else ("error" in body and "message" in body["error"])
    assert method in body["error"]["message"]


@pytest.mark.parametrize(("path", "ingress"), [("/v1/nothing-here", "openai"), ("/v1/messages/nope", "anthropic")])
def test_unknown_api_paths_are_json_in_the_callers_format(world, path, ingress):
    response = httpx.post(world.url + path, json={}, headers=headers_for(world, ingress))
    assert response.status_code == 404
    assert_clean(ingress, response, status=404)


@pytest.mark.parametrize(("ingress", "kind", "path", "model"), PATHS, ids=PATH_IDS)
def test_nested_types_of_the_wrong_json_type(world, ingress, kind, path, model):
    """Found by the fuzzer: a list or object where a block's or item's `type` string belongs did not even hash
    in the translators' lookups (a 500); now a 400 naming it (translated), or the upstream's answer (pass-through)."""
    body = base_body(ingress, model)
    failures = []
    for wrong in ([1], {"a": 1}, 7, None):
        if ingress == "responses":
            variants = [{**body, "input": [{"type": wrong, "role": "user", "content": "x"}]},
                        {**body, "tools": [{"type": wrong, "name": "t"}]}]  # fmt: skip
        else:
            block = {"type": wrong, "text": "x"}
            result = {"type": "tool_result", "tool_use_id": "t", "content": [{"type": wrong}]}
            variants = [{**body, "messages": [{"role": "user", "content": [block]}]},
                        {**body, "messages": [{"role": "user", "content": [result]}]}]  # fmt: skip
        for variant in variants:
            response = post(world, ingress, path, json.dumps(variant).encode())
            try:
                assert_clean(ingress, response, status=400 if kind == "translated" and wrong is not None else None)
            except AssertionError as exc:
                failures.append(f"{wrong!r}: {exc}")
    assert not failures, "\n".join(failures)


def test_response_ids_with_a_nul_are_not_found_not_500(world):
    """Found by the fuzzer on PostgreSQL, which refuses a NUL in a query string."""
    headers = headers_for(world, "responses")
    for method, path in (("GET", "/v1/responses/resp_%00x"), ("DELETE", "/v1/responses/resp_%00x"),
                         ("GET", "/v1/responses/resp_%00x/input_items")):  # fmt: skip
        assert_clean("responses", httpx.request(method, world.url + path, headers=headers), status=404)
    body = {"model": "gw-openai", "input": "hi", "previous_response_id": "resp_\u0000x"}
    for path in ("/v1/responses", "/v1/responses/input_tokens"):
        response = post(world, "responses", path, json.dumps(body).encode())
        assert_clean("responses", response)
        assert response.status_code in (400, 404)


@pytest.mark.parametrize(("ingress", "kind", "path", "model"), PATHS[::2], ids=PATH_IDS[::2])
def test_a_nul_in_the_model_name_is_400_and_the_ledger_keeps_writing(world, ledger, ingress, kind, path, model):
    """The requested model goes into the ledger row; PostgreSQL refuses a NUL there, which would have held the
    writer's batch back (and every row after it) for as long as it retried."""
    response = post(world, ingress, path, json.dumps({**base_body(ingress, model), "model": model + "\u0000"}).encode())
    assert_clean(ingress, response, status=400)
    assert "model" in response.json()["error"]["message"]
    good = post(world, ingress, path, json.dumps(base_body(ingress, model)).encode())
    assert good.status_code == 200
    ledger(good.headers["request-id" if ingress == "anthropic" else "x-request-id"])  # written
