"""Schema-based fuzzing of the real server (schemathesis on top of hypothesis), from the server's own
/openapi.json: bodies that fit each endpoint's documented request schema (POSITIVE) and bodies that break it
(NEGATIVE), for both ingress APIs, the Responses API, token counting and the model list. Every answer must be
free of 5xx and tracebacks, JSON (or a 200 event stream), and every error in the caller's format.

Bounded: MAX_EXAMPLES per operation and mode, no example database, and a wall-clock budget for the module
(BUDGET_SECONDS; an operation that starts after it is spent is skipped with a note, never counted as passed).
The model field is narrowed to this world's routes, so valid bodies travel the whole way (translated and
pass-through) to the fake upstream instead of stopping at "unknown model".
"""

import copy
import json
import os
import time

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

MAX_EXAMPLES = {"POST": 25, "GET": 10, "DELETE": 5}
BUDGET_SECONDS = 75
MODELS = {
    "/v1/messages": ["gw-anthropic", "gw-openai", "native-fake-claude"],
    "/v1/messages/count_tokens": ["gw-anthropic", "gw-openai"],
    "/v1/chat/completions": ["gw-openai", "gpt-fuzz", "gw-anthropic"],
    "/v1/responses": ["gw-openai", "gw-anthropic"],
    "/v1/responses/input_tokens": ["gw-openai", "gw-anthropic"],
}
OPERATIONS = [
    ("POST", "/v1/messages"),
    ("POST", "/v1/messages/count_tokens"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/responses"),
    ("POST", "/v1/responses/input_tokens"),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/{model_id}"),
    ("GET", "/v1/responses/{response_id}"),
    ("GET", "/v1/responses/{response_id}/input_items"),
    ("DELETE", "/v1/responses/{response_id}"),
]
CREDENTIAL_HEADERS = {"x-api-key", "api-key", "authorization"}
# CI runs the same examples every time (a red build means a regression, not a lucky draw); elsewhere each run
# draws new ones, to find new failures. GATEWAY_FUZZ_RANDOM=1 draws new ones in CI too.
DERANDOMIZE = bool(os.environ.get("CI")) and not os.environ.get("GATEWAY_FUZZ_RANDOM")


@pytest.fixture(scope="module")
def budget_started() -> float:
    return time.monotonic()  # when this module's first test starts, whatever ran before it


@pytest.fixture(scope="module")
def api_schema(world):
    document = httpx.get(world.url + "/openapi.json").json()
    document = copy.deepcopy(document)
    for path, models in MODELS.items():
        schema = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        schema["properties"]["model"] = {"enum": models}
    return schemathesis.openapi.from_dict(document)


def caller_headers(world, path: str, key: str = "alpha") -> dict:
    if path.startswith("/v1/messages"):
        return {"x-api-key": world.keys[key], "anthropic-version": "2023-06-01"}
    return {"authorization": f"Bearer {world.keys[key]}"}


def check_answer(path: str, response) -> None:
    """`response`: schemathesis's (headers: lower-case names, lists of values)."""
    text = response.content.decode("utf-8", errors="replace")
    context = f"{response.request.method} {response.request.url} -> {response.status_code} {text[:400]!r}\n" \
              f"request body: {(response.request.body or b'')[:400]!r}"
    assert response.status_code < 500, context
    assert "Traceback" not in text and 'File "/' not in text, context
    content_type = (response.headers.get("content-type") or [""])[0]
    if response.status_code == 200 and content_type.startswith("text/event-stream"):
        return
    assert content_type.startswith("application/json"), context
    body = json.loads(text)
    if response.status_code < 400:
        return
    if path.startswith("/v1/messages"):  # Anthropic's error shape
        assert body.get("type") == "error" and isinstance(body["error"]["message"], str), context
    else:  # OpenAI's (Chat, Responses, and the model list for a caller that sends Authorization: Bearer)
        assert isinstance(body["error"]["message"], str) and "type" in body["error"], context


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_fuzz(world, api_schema, budget_started, method, path, mode):
    if time.monotonic() - budget_started > BUDGET_SECONDS:
        pytest.skip(f"fuzz budget of {BUDGET_SECONDS} s spent before this operation")
    operation = api_schema[path][method]
    headers = caller_headers(world, path)
    session = requests.Session()
    calls, errors = [], []

    @settings(max_examples=MAX_EXAMPLES[method], deadline=None, database=None, derandomize=DERANDOMIZE,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case):
        generated = {k: v for k, v in (case.headers or {}).items() if k.lower() not in CREDENTIAL_HEADERS}
        case.headers = {**generated, **headers}  # the fuzzer's own (random) API key would only test the 401
        response = case.call(base_url=world.url, session=session, timeout=30)
        calls.append(response.status_code)
        if response.status_code == 400:
            errors.append(response.content[:200])
        try:
            check_answer(path, response)
        except AssertionError as exc:  # the server's own account of it, for a failure seen only in CI
            log = world.server.log_path.read_text(errors="replace")
            start = log.rfind("Traceback")
            raise AssertionError(f"{exc}\n--- server log ---\n{log[start:start + 4000] if start >= 0 else log[-2000:]}")

    fuzz()
    assert calls, "the fuzzer sent nothing"
    if mode == schemathesis.GenerationMode.POSITIVE and method == "POST":
        assert 200 in calls, f"no valid body was served: {sorted(set(calls))} {errors[:5]}"  # the schema is no wall
