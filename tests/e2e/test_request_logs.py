"""Request logs through the real gateway (docs/request-logs.md): a conversation sent with the official SDKs on each
ingress, streamed and not, is kept with its project's setting and read back through the management API; metadata
mode keeps no bodies, off keeps nothing, the size cap cuts with a marker, a kill before the ledger flush loses
neither the row nor its log, a `read` token never gets bodies."""

import signal
import uuid

import httpx
import orjson
import pytest

from tests.conftest import stop_gateway
from usage import request_logs

from .test_ledger_durability import gateway, rows_after_a_restart

TOOL = {"name": "get_weather", "description": "Weather of a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}  # fmt: skip
CHAT_TOOL = {"type": "function", "function": {"name": TOOL["name"], "description": TOOL["description"],
                                              "parameters": TOOL["input_schema"]}}  # fmt: skip
RESPONSES_TOOL = {"type": "function", "name": TOOL["name"], "description": TOOL["description"],
                  "parameters": TOOL["input_schema"]}  # fmt: skip
PROMPT = 'Weather in Paris? USE_TOOL: get_weather {"city": "Paris"}\nUSAGE: in=12 out=5'


def _project(mode: str, **settings):
    from accounts.keys import key_create
    from accounts.models import Project

    slug = f"logs-{mode}-{uuid.uuid4().hex[:6]}"
    project = Project.objects.create(slug=slug, name=slug, request_log_mode=mode, **settings)
    return project, key_create(project=project, name="k")[1]


@pytest.fixture(scope="module")
def keys(world, django_db_blocker):
    from accounts.api_tokens import token_create

    with django_db_blocker.unblock():
        projects = {mode: _project(mode) for mode in ("full", "metadata", "off")}
        projects["capped"] = _project("full", request_log_max_bytes=1024)
        tokens = {scope: token_create(name=f"logs-{scope}-{uuid.uuid4().hex[:6]}", scope=scope)[1]
                  for scope in ("read", "logs", "write")}  # fmt: skip
    return {"keys": {name: key for name, (_, key) in projects.items()},
            "projects": {name: p for name, (p, _) in projects.items()}, "tokens": tokens}  # fmt: skip


def fetch(world, keys, request_id: str, scope: str = "logs", timeout: float = 5.0) -> httpx.Response:
    """The log through the management API, once the ledger writer has written it."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(f"{world.url}/manage/v1/request-logs/{request_id}",
                             headers={"authorization": f"Bearer {keys['tokens'][scope]}"})  # fmt: skip
        if response.status_code != 404 or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


# --- one conversation per ingress, streamed and not -----------------------------------------------------------


def anthropic_call(world, key, stream: bool) -> tuple[str, str]:
    client = world.anthropic().with_options(api_key=key)
    kwargs = {"model": "gw-anthropic", "max_tokens": 200, "tools": [TOOL], "system": "You are terse.",
              "messages": [{"role": "user", "content": PROMPT}]}  # fmt: skip
    if stream:
        with client.messages.stream(**kwargs) as s:
            message = s.get_final_message()
            return s.response.headers["request-id"], message.content[-1].name
    message = client.messages.create(**kwargs)
    return message._request_id, message.content[-1].name


def chat_call(world, key, stream: bool) -> tuple[str, str]:
    client = world.openai().with_options(api_key=key)
    kwargs = {"model": "gw-openai", "tools": [CHAT_TOOL], "messages": [
        {"role": "system", "content": "You are terse."}, {"role": "user", "content": PROMPT}]}  # fmt: skip
    if stream:
        with client.chat.completions.create(stream=True, **kwargs) as s:
            names = [tc.function.name for chunk in s for c in chunk.choices for tc in (c.delta.tool_calls or [])
                     if tc.function and tc.function.name]  # fmt: skip
            return s.response.headers["x-request-id"], names[0]
    completion = client.chat.completions.create(**kwargs)
    return completion._request_id, completion.choices[0].message.tool_calls[0].function.name


def responses_call(world, key, stream: bool) -> tuple[str, str]:
    client = world.openai().with_options(api_key=key)
    kwargs = {"model": "gw-openai", "tools": [RESPONSES_TOOL], "instructions": "You are terse.", "input": PROMPT}
    if stream:
        with client.responses.create(stream=True, **kwargs) as s:
            final = [e.response for e in s if e.type == "response.completed"][0]
            return s.response.headers["x-request-id"], final.output[-1].name
    response = client.responses.create(**kwargs)
    return response._request_id, response.output[-1].name


def _strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


CALLS = {"anthropic": anthropic_call, "openai": chat_call, "responses": responses_call}


def _response_tool_calls(api: str, response: dict) -> list[str]:
    if api == "anthropic":
        return [b["name"] for b in response["content"] if b["type"] == "tool_use"]
    if api == "openai":
        return [c["function"]["name"] for c in response["choices"][0]["message"]["tool_calls"]]
    return [o["name"] for o in response["output"] if o["type"] == "function_call"]


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("api", list(CALLS))
def test_a_conversation_is_logged_and_read_back_on_each_ingress(world, keys, api, stream):
    request_id, called = CALLS[api](world, keys["keys"]["full"], stream)
    assert called == "get_weather"
    response = fetch(world, keys, request_id)
    assert response.status_code == 200, response.text
    log = response.json()
    assert (log["mode"], log["ingress_api"], log["stream"], log["http_status"]) == ("full", api, stream, 200)
    assert log["project_id"] == keys["projects"]["full"].id and not log["truncated"]
    request, answer = log["bodies"]["request"], log["bodies"]["response"]
    assert PROMPT in _strings(request)  # the caller's own body
    assert request.get("stream", False) is stream
    assert _response_tool_calls(api, answer) == ["get_weather"]  # the answer as the caller got it (assembled)
    assert log["meta"]["tools"] == ["get_weather"] and log["meta"]["tool_calls"] == ["get_weather"]
    assert log["meta"]["stop_reason"] in ("tool_use", "tool_calls", "completed")
    assert 0 < log["stored_bytes"] < log["body_bytes"]  # compressed


def test_metadata_mode_keeps_no_bodies(world, keys, committed):
    from usage.models import RequestLog

    request_id, _ = anthropic_call(world, keys["keys"]["metadata"], stream=False)
    log = fetch(world, keys, request_id).json()
    assert log["mode"] == "metadata" and log["bodies"] is None
    assert log["meta"]["tools"] == ["get_weather"] and log["meta"]["stop_reason"] == "tool_use"
    stored = RequestLog.objects.get(request_id=request_id)
    assert stored.body is None and "Paris" not in orjson.dumps(stored.meta).decode()


def test_off_keeps_nothing(world, keys, ledger):
    from usage.models import RequestLog

    request_id, _ = chat_call(world, keys["keys"]["off"], stream=True)
    assert ledger(request_id).outcome == "ok"  # the row is written; its log would have been in the same insert
    assert not RequestLog.objects.filter(request_id=request_id).exists()
    assert fetch(world, keys, request_id, timeout=0).status_code == 404


def test_the_size_cap_cuts_long_texts_with_a_marker(world, keys, committed):
    from usage.models import RequestLog

    client = world.openai().with_options(api_key=keys["keys"]["capped"])
    long_text = "word " * 2000
    completion = client.chat.completions.create(model="gw-openai", messages=[
        {"role": "user", "content": f"{long_text}\nSAY: short answer"}])  # fmt: skip
    log = fetch(world, keys, completion._request_id).json()
    assert log["truncated"] and log["body_bytes"] <= 1024
    content = log["bodies"]["request"]["messages"][0]["content"]
    assert "[cut by the request log size cap:" in content and content.startswith("word word")
    assert log["bodies"]["response"]["choices"][0]["message"]["content"] == "short answer"  # short texts kept whole
    stored = request_logs.bodies(RequestLog.objects.get(request_id=completion._request_id))
    assert len(orjson.dumps(stored)) <= 1024


def test_a_read_token_gets_the_metadata_never_the_bodies(world, keys):
    request_id, _ = anthropic_call(world, keys["keys"]["full"], stream=False)
    for scope in ("logs", "write"):
        assert PROMPT in fetch(world, keys, request_id, scope).json()["bodies"]["request"]["messages"][0]["content"]
    read = fetch(world, keys, request_id, "read")
    assert read.status_code == 200 and "bodies" not in read.json() and read.json()["meta"]["tools"] == ["get_weather"]
    assert "Paris" not in read.text


def test_a_log_answered_before_a_kill_is_kept_with_its_row(world, keys, committed, tmp_path):
    """The ledger's flush is 60 s: the row and its log are only in the spool when the process is killed."""
    from usage.models import RequestLog

    server = gateway(tmp_path, "data", GATEWAY_LEDGER_FLUSH_SECONDS="60")
    try:
        client = world.openai().with_options(api_key=keys["keys"]["full"], base_url=server.url + "/v1")
        completion = client.chat.completions.create(model="gw-openai", messages=[
            {"role": "user", "content": "SAY: kept through a kill"}])  # fmt: skip
        request_id = completion._request_id
        assert not RequestLog.objects.filter(request_id=request_id).exists()
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
    finally:
        stop_gateway(server)
    for _ in range(2):  # replayed once; a second restart writes nothing twice
        assert [r.outcome for r in rows_after_a_restart(tmp_path, "data", [request_id])] == ["ok"]
        logs = list(RequestLog.objects.filter(request_id=request_id))
        assert len(logs) == 1
    body = request_logs.bodies(logs[0])
    assert body["response"]["choices"][0]["message"]["content"] == "kept through a kill"


def test_the_management_api_turns_logs_on_and_traffic_follows(world, keys, committed):
    from usage.models import RequestLog

    project = keys["projects"]["off"]
    api = httpx.Client(base_url=f"{world.url}/manage/v1", headers={"authorization": f"Bearer {keys['tokens']['write']}"})
    assert api.get(f"/projects/{project.slug}").json()["request_logs"] == {"mode": "off", "retention_days": 30,
                                                                          "max_bytes": 262144}  # fmt: skip
    bad = api.patch(f"/projects/{project.slug}", json={"request_logs": {"mode": "everything"}})
    assert bad.status_code == 422 and "request_logs.mode: invalid mode 'everything'" in bad.text
    changed = api.patch(f"/projects/{project.slug}", json={"request_logs": {"mode": "full", "retention_days": 7}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["request_logs"] == {"mode": "full", "retention_days": 7, "max_bytes": 262144}
    try:
        import time

        deadline = time.monotonic() + 5  # the gateway's key snapshot is refreshed within GATEWAY_CACHE_TTL
        while True:
            request_id, _ = chat_call(world, keys["keys"]["off"], stream=False)
            if fetch(world, keys, request_id, timeout=1).status_code == 200 or time.monotonic() > deadline:
                break
        assert RequestLog.objects.get(request_id=request_id).full
    finally:
        api.patch(f"/projects/{project.slug}", json={"request_logs": {"mode": "off"}})


def test_a_stored_log_never_keeps_a_secret_even_one_the_project_only_counts(world, keys, committed):
    """Redaction in `log` mode sends the prompt unchanged (proxy/redact.py); the log's copy masks it anyway
    (proxy/request_log.log_copy), in the request and in the answer that repeats it."""
    from accounts.models import ProjectRedaction

    project, key = _project("full")
    ProjectRedaction.objects.create(project=project, secrets="log")
    secret = "AKIA" + uuid.uuid4().hex[:16].upper()
    client = world.anthropic().with_options(api_key=key)
    message = client.messages.create(model="gw-anthropic", max_tokens=50,
                                     messages=[{"role": "user", "content": f"my key is {secret} SAY: {secret}"}])  # fmt: skip
    assert any(secret in str(r.get("body")) for r in world.fake.requests)  # log mode: the upstream got it as sent
    stored = fetch(world, keys, message._request_id)
    assert stored.status_code == 200 and "[REDACTED:aws_access_key:" in stored.text
    assert secret not in stored.text
