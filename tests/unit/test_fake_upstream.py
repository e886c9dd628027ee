"""The fake upstream speaks the real wire formats: the official anthropic and openai SDKs, pointed straight at
it, parse every reply (create, stream, tools, thinking, usage, errors) with their own types and exceptions."""

from __future__ import annotations

import base64
import glob
import json
import os
import time
import urllib.error
import urllib.request

import anthropic
import openai
import pytest

from tests.fakes.upstream import DEFAULT_TEXT, FakeUpstream, FakeUpstreamProcess

KEY = "sk-fake"
MODEL_A = "claude-test-1"
MODEL_O = "gpt-test-1"
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")


@pytest.fixture(scope="module")
def fake():
    with FakeUpstream(key=KEY) as f:
        yield f


@pytest.fixture
def ant(fake):
    with anthropic.Anthropic(base_url=fake.url, api_key=KEY, max_retries=0) as c:
        yield c


@pytest.fixture
def oai(fake):
    with openai.OpenAI(base_url=fake.openai_url, api_key=KEY, max_retries=0) as c:
        yield c


def a_create(client, text, **kw):
    kw.setdefault("max_tokens", 100)
    return client.messages.create(model=MODEL_A, messages=[{"role": "user", "content": text}], **kw)


def o_create(client, text, **kw):
    return client.chat.completions.create(model=MODEL_O, messages=[{"role": "user", "content": text}], **kw)


def http(fake, method, path, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(fake.url + path, data=data, method=method,
                                 headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


# ---------------------------------------------------------------- Anthropic


def test_anthropic_create_default(ant):
    raw = ant.messages.with_raw_response.create(
        model=MODEL_A, max_tokens=100, messages=[{"role": "user", "content": "hello"}])
    assert raw.headers["request-id"].startswith("req_fake")
    msg = raw.parse()
    assert msg.id.startswith("msg_fake") and msg.model == MODEL_A and msg.role == "assistant"
    assert [b.type for b in msg.content] == ["text"] and msg.content[0].text == DEFAULT_TEXT
    assert msg.stop_reason == "end_turn" and msg.stop_sequence is None
    assert msg.usage.output_tokens == 20 and msg.usage.input_tokens > 0
    assert msg.usage.cache_read_input_tokens == 0 and msg.usage.cache_creation_input_tokens == 0


def test_anthropic_stream_grammar(ant):
    events = list(a_create(ant, "hello", stream=True))
    types = [e.type for e in events]
    assert types[:3] == ["message_start", "content_block_start", "content_block_delta"]  # SDK drops ping
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    deltas = [e.delta.text for e in events if e.type == "content_block_delta"]
    assert len(deltas) == 20 and "".join(deltas) == DEFAULT_TEXT
    start = events[0].message
    assert start.usage.output_tokens == 1 and start.stop_reason is None and start.model == MODEL_A
    assert events[-2].delta.stop_reason == "end_turn" and events[-2].usage.output_tokens == 20


def test_anthropic_stream_raw_sse_has_ping_and_event_names(fake):
    status, headers, body = http(fake, "POST", "/v1/messages?beta=true",
                                 {"model": MODEL_A, "max_tokens": 5, "stream": True,
                                  "messages": [{"role": "user", "content": "hi"}]},
                                 {"x-api-key": KEY, "anthropic-version": "2023-06-01", "x-fake-chunks": "2"})
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert fake.requests[-1]["query"] == "beta=true"
    events = body.decode().split("\n\n")[:-1]
    names = []
    for ev in events:
        name_line, data_line = ev.split("\n")
        name = name_line.removeprefix("event: ")
        assert json.loads(data_line.removeprefix("data: "))["type"] == name
        names.append(name)
    assert names == ["message_start", "ping", "content_block_start", "content_block_delta", "content_block_delta",
                     "content_block_stop", "message_delta", "message_stop"]


def test_anthropic_stream_helper_and_chunks_header(ant):
    with ant.messages.stream(model=MODEL_A, max_tokens=10, messages=[{"role": "user", "content": "SAY: abcdef"}],
                             extra_headers={"x-fake-chunks": "3"}) as s:
        pieces = list(s.text_stream)
        final = s.get_final_message()
    assert pieces == ["ab", "cd", "ef"] and final.content[0].text == "abcdef"


def test_anthropic_beta_path(ant, fake):
    msg = ant.beta.messages.create(model=MODEL_A, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert msg.content[0].text == DEFAULT_TEXT
    assert fake.requests[-1]["path"] == "/v1/messages"


def test_anthropic_parallel_tools(ant):
    text = 'USE_TOOL: get_weather {"city": "Paris"}\nUSE_TOOL: get_time {"tz": "UTC"}'
    msg = a_create(ant, text)
    assert msg.stop_reason == "tool_use"
    assert [(b.type, b.id, b.name, b.input) for b in msg.content] == [
        ("tool_use", "toolu_fake_1", "get_weather", {"city": "Paris"}),
        ("tool_use", "toolu_fake_2", "get_time", {"tz": "UTC"})]
    with ant.messages.stream(model=MODEL_A, max_tokens=10, messages=[{"role": "user", "content": text}]) as s:
        events = list(s)
        final = s.get_final_message()
    assert [b.input for b in final.content] == [{"city": "Paris"}, {"tz": "UTC"}]
    partial = [e.delta.partial_json for e in events if e.type == "content_block_delta" and e.index == 0]
    assert len(partial) == 3 and partial[0] == ""


def test_anthropic_tool_ids_unique_across_turns_and_tool_result_terminates(ant):
    msgs = [{"role": "user", "content": "USE_TOOL: Read /tmp/notes.txt"}]
    tools = [{"name": "Read", "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}},
                                               "required": ["file_path"]}}]
    first = ant.messages.create(model=MODEL_A, max_tokens=10, messages=msgs, tools=tools)
    call = first.content[0]
    assert call.input == {"file_path": "/tmp/notes.txt"} and call.id == "toolu_fake_1"
    msgs += [{"role": "assistant", "content": [call.model_dump(include={"type", "id", "name", "input"})]},
             {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                           "content": "1\tcapture-marker-7731 and a lot more text here"}]}]
    second = ant.messages.create(model=MODEL_A, max_tokens=10, messages=msgs, tools=tools)
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == "Done: " + "1\tcapture-marker-7731 and a lot more text here"[:40]
    msgs += [{"role": "assistant", "content": second.content[0].text},
             {"role": "user", "content": "USE_TOOL: Read /tmp/b"}]
    assert ant.messages.create(model=MODEL_A, max_tokens=10, messages=msgs, tools=tools).content[0].id == \
        "toolu_fake_2"


def test_anthropic_thinking(ant):
    text = "THINK: let me think\nSAY: answer"
    msg = a_create(ant, text)
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert msg.content[0].thinking == "let me think" and msg.content[0].signature.startswith("fakesig_")
    with ant.messages.stream(model=MODEL_A, max_tokens=10, messages=[{"role": "user", "content": text}]) as s:
        events = list(s)
        final = s.get_final_message()
    assert final.content[0].thinking == "let me think" and final.content[0].signature == msg.content[0].signature
    kinds = [e.delta.type for e in events if e.type == "content_block_delta" and e.index == 0]
    assert kinds[-1] == "signature_delta" and set(kinds[:-1]) == {"thinking_delta"}


def test_anthropic_json_forced_tool(ant):
    msg = a_create(ant, 'JSON: {"a": 1, "b": [2]}', tool_choice={"type": "tool", "name": "emit"},
                   tools=[{"name": "emit", "input_schema": {"type": "object"}}])
    assert msg.content[0].type == "tool_use" and msg.content[0].name == "emit"
    assert msg.content[0].input == {"a": 1, "b": [2]} and msg.stop_reason == "tool_use"
    assert a_create(ant, 'JSON: {"a": 1}').content[0].text == '{"a": 1}'


def test_anthropic_stop_sequence_and_length(ant):
    msg = a_create(ant, "STOP_AT: ###", stop_sequences=["###"])
    assert (msg.content[0].text, msg.stop_reason, msg.stop_sequence) == ("before", "stop_sequence", "###")
    assert a_create(ant, "STOP_AT: ###").content[0].text == "before###after"
    msg = a_create(ant, "LENGTH", max_tokens=7)
    assert msg.stop_reason == "max_tokens" and msg.usage.output_tokens == 7
    assert len(msg.content[0].text.split()) == 7
    final = a_create(ant, "LENGTH", max_tokens=7, stream=True)
    assert [e for e in final if e.type == "message_delta"][0].delta.stop_reason == "max_tokens"


def test_anthropic_usage_override(ant):
    text = "USAGE: in=11 out=22 cache_read=33 cache_write=44"
    u = a_create(ant, text).usage
    assert (u.input_tokens, u.output_tokens, u.cache_read_input_tokens, u.cache_creation_input_tokens) == \
        (11, 22, 33, 44)
    with ant.messages.stream(model=MODEL_A, max_tokens=5, messages=[{"role": "user", "content": text}]) as s:
        u = s.get_final_message().usage
    assert (u.input_tokens, u.output_tokens, u.cache_read_input_tokens, u.cache_creation_input_tokens) == \
        (11, 22, 33, 44)


def test_anthropic_images(ant):
    img = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    msg = ant.messages.create(model=MODEL_A, max_tokens=5, messages=[
        {"role": "user", "content": [img, img, {"type": "text", "text": "what is this"}]}])
    assert msg.content[0].text == "I see 2 image(s)."


@pytest.mark.parametrize(("code", "exc"), [
    ("400", anthropic.BadRequestError), ("401", anthropic.AuthenticationError),
    ("404", anthropic.NotFoundError), ("413", anthropic.ContentTooLargeError),
    ("429", anthropic.RateLimitError), ("500", anthropic.InternalServerError),
    ("503", anthropic.ServiceUnavailableError), ("529", anthropic.OverloadedError),
])
@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_http_errors(ant, code, exc, stream):
    with pytest.raises(exc) as info:
        a_create(ant, f"FAIL: {code}", stream=stream)
    e = info.value
    assert e.status_code == int(code) and e.body["type"] == "error"
    assert set(e.body["error"]) == {"type", "message"} and e.body["request_id"].startswith("req_fake")
    assert e.response.headers["request-id"] == e.body["request_id"]
    assert e.response.headers.get("retry-after") == ("1" if code in ("429", "529") else None)


def test_anthropic_auth_and_version(fake):
    with anthropic.Anthropic(base_url=fake.url, api_key="wrong", max_retries=0) as c:
        with pytest.raises(anthropic.AuthenticationError):
            a_create(c, "hi")
    with anthropic.Anthropic(base_url=fake.url, auth_token=KEY, max_retries=0) as c:  # Authorization: Bearer
        assert a_create(c, "hi").content[0].text == DEFAULT_TEXT
    body = {"model": MODEL_A, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    status, _, raw = http(fake, "POST", "/v1/messages", body, {"x-api-key": KEY})
    assert status == 400 and json.loads(raw)["error"]["type"] == "invalid_request_error"
    status, _, raw = http(fake, "POST", "/v1/messages", {"model": MODEL_A, "messages": body["messages"]},
                          {"x-api-key": KEY, "anthropic-version": "2023-06-01"})
    assert status == 400 and "max_tokens" in json.loads(raw)["error"]["message"]


def test_anthropic_midstream_error(ant):
    stream = a_create(ant, "FAIL: midstream", stream=True)
    seen = []
    with pytest.raises(anthropic.APIStatusError) as info:
        for e in stream:
            seen.append(e.type)
    assert info.value.body["error"]["type"] == "overloaded_error"
    assert seen.count("content_block_delta") == 3 and "message_stop" not in seen
    # the non-stream retry Claude Code sends after a broken stream succeeds
    assert a_create(ant, "FAIL: midstream").content[0].text == DEFAULT_TEXT


def test_anthropic_truncate_and_early_eof(ant):
    seen = []
    with pytest.raises(Exception):  # transport error from the HTTP client: the body never ends
        for e in a_create(ant, "FAIL: truncate", stream=True):
            seen.append(e.type)
    assert seen.count("content_block_delta") == 3 and "message_stop" not in seen
    seen = [e.type for e in a_create(ant, "FAIL: early_eof", stream=True)]
    assert seen.count("content_block_delta") == 3 and seen[-1] == "content_block_delta"


def test_anthropic_timeout_and_slow(fake):
    with anthropic.Anthropic(base_url=fake.url, api_key=KEY, max_retries=0, timeout=0.3) as c:
        with pytest.raises(anthropic.APITimeoutError):
            a_create(c, "FAIL: timeout", extra_headers={"x-fake-hang-ms": "3000"})
        t = time.monotonic()
        a_create(c, "SLOW: 150")
        assert time.monotonic() - t >= 0.15


def test_fail_first(ant, oai):
    tag = f"FAIL_FIRST: 529 {time.time_ns()}"
    with pytest.raises(anthropic.OverloadedError):
        a_create(ant, tag)
    assert a_create(ant, tag).content[0].text == DEFAULT_TEXT
    tag = f"FAIL_FIRST: 429 {time.time_ns()}"
    with pytest.raises(openai.RateLimitError):
        o_create(oai, tag)
    assert o_create(oai, tag).choices[0].message.content == DEFAULT_TEXT


def test_count_tokens(ant):
    res = ant.messages.count_tokens(model=MODEL_A, messages=[{"role": "user", "content": "x" * 40}],
                                    system="y" * 20)
    assert res.input_tokens == (40 + len("user") + 20) // 4
    assert ant.beta.messages.count_tokens(model=MODEL_A, messages=[{"role": "user", "content": "x"}]).input_tokens == 1


def test_models_both_shapes(ant, oai):
    a = ant.models.list()
    assert "claude-sonnet-4-5" in [m.id for m in a.data] and a.data[0].type == "model"
    assert ant.models.retrieve("gpt-4o").id == "gpt-4o"
    with pytest.raises(anthropic.NotFoundError):
        ant.models.retrieve("nope")
    o = oai.models.list()
    assert "gpt-4o" in [m.id for m in o.data] and o.data[0].object == "model"
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("nope")


# ---------------------------------------------------------------- OpenAI


def test_openai_create_default(oai):
    raw = oai.chat.completions.with_raw_response.create(model=MODEL_O, messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-request-id"].startswith("req_fake")
    c = raw.parse()
    assert c.id.startswith("chatcmpl-") and c.object == "chat.completion" and c.model == MODEL_O
    ch = c.choices[0]
    assert ch.message.content == DEFAULT_TEXT and ch.finish_reason == "stop" and ch.message.tool_calls is None
    assert c.usage.completion_tokens == 20 and c.usage.prompt_tokens > 0
    assert c.usage.total_tokens == c.usage.prompt_tokens + 20
    assert c.usage.prompt_tokens_details.cached_tokens == 0


def test_openai_stream_with_usage(oai):
    chunks = list(o_create(oai, "hi", stream=True, stream_options={"include_usage": True}))
    assert len({(c.id, c.created) for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    body, usage = chunks[:-1], chunks[-1]
    assert usage.choices == [] and usage.usage.completion_tokens == 20
    assert all(c.usage is None and "usage" in c.model_fields_set for c in body)
    assert body[-1].choices[0].finish_reason == "stop" and body[-1].choices[0].delta.content is None
    assert "".join(c.choices[0].delta.content or "" for c in body) == DEFAULT_TEXT
    assert sum(1 for c in body if c.choices[0].delta.content) == 20


def test_openai_stream_without_usage(oai):
    chunks = list(o_create(oai, "hi", stream=True))
    assert all(c.choices and "usage" not in c.model_fields_set for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_openai_parallel_tools_interleaved(oai):
    text = 'USE_TOOL: get_weather {"city": "Paris"}\nUSE_TOOL: get_time {"tz": "UTC"}'
    c = o_create(oai, text)
    assert c.choices[0].finish_reason == "tool_calls" and c.choices[0].message.content is None
    calls = c.choices[0].message.tool_calls
    assert [(t.id, t.function.name, json.loads(t.function.arguments)) for t in calls] == [
        ("call_fake_1", "get_weather", {"city": "Paris"}), ("call_fake_2", "get_time", {"tz": "UTC"})]
    chunks = list(o_create(oai, text, stream=True))
    order = [c.choices[0].delta.tool_calls[0].index for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert order == [0, 1, 0, 1, 0, 1, 0, 1]
    chunks = list(o_create(oai, text, stream=True, extra_headers={"x-fake-interleave": "0"}))
    order = [c.choices[0].delta.tool_calls[0].index for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert order == [0, 0, 0, 0, 1, 1, 1, 1]
    with oai.chat.completions.stream(model=MODEL_O, messages=[{"role": "user", "content": text}]) as s:
        final = s.get_final_completion()
    assert [json.loads(t.function.arguments) for t in final.choices[0].message.tool_calls] == [
        {"city": "Paris"}, {"tz": "UTC"}]


def test_openai_tool_round_trip_terminates(oai):
    first = o_create(oai, "USE_TOOL:llm_version").choices[0].message
    assert json.loads(first.tool_calls[0].function.arguments) == {}
    msgs = [{"role": "user", "content": "USE_TOOL:llm_version"}, first.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "0.36"}]
    c = oai.chat.completions.create(model=MODEL_O, messages=msgs)
    assert c.choices[0].message.content == "Done: 0.36" and c.choices[0].finish_reason == "stop"


def test_openai_reasoning_content(oai):
    c = o_create(oai, "THINK: hmm\nSAY: ok")
    assert c.choices[0].message.content == "ok" and c.choices[0].message.model_extra["reasoning_content"] == "hmm"
    chunks = list(o_create(oai, "THINK: hmm\nSAY: ok", stream=True))
    r = "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content", "") for c in chunks if c.choices)
    assert r == "hmm"


def test_openai_json_stop_length_usage(oai):
    c = o_create(oai, 'JSON: {"k": "v"}', response_format={"type": "json_object"})
    assert json.loads(c.choices[0].message.content) == {"k": "v"}
    c = o_create(oai, 'JSON: {"k": "v"}', tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
                 tool_choice={"type": "function", "function": {"name": "f"}})
    assert json.loads(c.choices[0].message.tool_calls[0].function.arguments) == {"k": "v"}
    c = o_create(oai, "STOP_AT: END", stop=["END"])
    assert (c.choices[0].message.content, c.choices[0].finish_reason) == ("before", "stop")
    c = o_create(oai, "LENGTH", max_tokens=4)
    assert c.choices[0].finish_reason == "length" and c.usage.completion_tokens == 4
    c = o_create(oai, "USAGE: in=10 out=5 cache_read=3 cache_write=2")
    u = c.usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (15, 5, 20)
    details = u.prompt_tokens_details.model_dump(exclude_unset=True)
    assert details == {"cached_tokens": 3, "cache_write_tokens": 2}
    details = o_create(oai, "USAGE: in=1 cache_read=3").usage.prompt_tokens_details.model_dump(exclude_unset=True)
    assert details == {"cached_tokens": 3}


def test_openai_images_and_say_b64(oai):
    part = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    c = oai.chat.completions.create(model=MODEL_O, messages=[
        {"role": "user", "content": [{"type": "text", "text": "look"}, part]}])
    assert c.choices[0].message.content == "I see 1 image(s)."
    b64 = base64.b64encode("héllo\nworld".encode()).decode()
    assert o_create(oai, f"SAY_B64:{b64}").choices[0].message.content == "héllo\nworld"


@pytest.mark.parametrize(("code", "exc"), [
    ("400", openai.BadRequestError), ("401", openai.AuthenticationError), ("404", openai.NotFoundError),
    ("413", openai.APIStatusError), ("429", openai.RateLimitError), ("500", openai.InternalServerError),
    ("503", openai.InternalServerError), ("529", openai.InternalServerError),
])
@pytest.mark.parametrize("stream", [False, True])
def test_openai_http_errors(oai, code, exc, stream):
    with pytest.raises(exc) as info:
        o_create(oai, f"FAIL: {code}", stream=stream)
    e = info.value
    assert e.status_code == int(code) and set(e.body) == {"message", "type", "param", "code"}
    assert e.response.headers["x-request-id"].startswith("req_fake")
    assert e.response.headers.get("retry-after") == ("1" if code in ("429", "529") else None)


def test_openai_auth(fake):
    with openai.OpenAI(base_url=fake.openai_url, api_key="wrong", max_retries=0) as c:
        with pytest.raises(openai.AuthenticationError) as info:
            o_create(c, "hi")
    assert info.value.code == "invalid_api_key"


def test_openai_midstream_and_truncate(oai):
    seen = []
    with pytest.raises(openai.APIError) as info:
        for c in o_create(oai, "FAIL: midstream", stream=True):
            seen.append(c)
    assert "overloaded" in str(info.value) and len(seen) == 4  # role chunk + 3 deltas
    seen = []
    with pytest.raises(Exception):
        for c in o_create(oai, "FAIL: truncate", stream=True):
            seen.append(c)
    assert len(seen) == 4 and not any(c.choices[0].finish_reason for c in seen)


def test_slow_chunks_spreads_events(oai):
    t = time.monotonic()
    chunks = list(o_create(oai, "SLOW_CHUNKS: 20", stream=True, extra_headers={"x-fake-chunks": "4"}))
    assert time.monotonic() - t >= 0.1 and len(chunks) == 6


# ---------------------------------------------------------------- inspection, fixtures, subprocess


def test_inspection_endpoints(fake, ant):
    assert http(fake, "GET", "/_fake/health")[0] == 200
    assert http(fake, "DELETE", "/_fake/requests")[0] == 200
    a_create(ant, "SAY: logged", extra_headers={"x-extra": "1"})
    status, _, raw = http(fake, "GET", "/_fake/requests")
    [rec] = json.loads(raw)
    assert rec["path"] == "/v1/messages" and rec["headers"]["x-extra"] == "1"
    assert KEY in (rec["headers"].get("x-api-key"), rec["headers"].get("authorization", "").removeprefix("Bearer "))
    assert rec["body"]["messages"][0]["content"] == "SAY: logged"
    status, _, raw = http(fake, "GET", "/v1/unknown", headers={"anthropic-version": "2023-06-01"})
    assert status == 404 and json.loads(raw)["error"]["type"] == "not_found_error"
    status, _, raw = http(fake, "POST", "/v1/embeddings-not-served", {})
    assert status == 404 and set(json.loads(raw)["error"]) == {"message", "type", "param", "code"}
    stats = json.loads(http(fake, "GET", "/_fake/stats")[2])
    assert stats["by_path"]["/v1/messages"] >= 1 and stats["cpu_seconds"] > 0


def _fixture_files():
    """The single captured requests to the plain APIs (sessions/ holds whole recorded sessions, replayed by
    replay_savings; seeds/ other gateways' config files; claude-code-cloud/ Bedrock- and Vertex-shaped requests,
    replayed against the gateway by tests/e2e/test_cloud_ingress.py)."""
    return sorted(f for f in glob.glob(os.path.join(FIXTURES, "*", "*.json"))
                  if not any(os.sep + d + os.sep in f for d in ("sessions", "seeds", "claude-code-cloud")))  # fmt: skip


def test_replay_real_client_fixtures(fake):
    """Every captured request replays against the fake (with its key) and gets a well-formed answer."""
    assert len(_fixture_files()) == 21
    expect = {
        "messages-tool-result-turn.json": "Done: 1\tcapture-marker-7731\n2\t",
        "messages-bash-tool-result-turn.json": "Done: bash-marker-42",
        "messages-agent-tool-result-turn.json": "Done: subagent-answer-99",
        "messages-subagent-haiku.json": "subagent-answer-99",
        "messages-nonstream-retry.json": DEFAULT_TEXT,
        "aider-chat.json": base64.b64decode(
            "SGVyZSBpcyB0aGUgdXBkYXRlZCBmaWxlOgoKaGVsbG8udHh0CmBgYAplZGl0ZWQtYnktYWlkZXItdmlhLWZha2UgMTIzCmBgYAo="
        ).decode(),
        "llm-tool-followup-turn.json": "second turn ok",
        "llm-tool-result.json": "Done: 0.36",
    }
    for path in _fixture_files():
        fx = json.load(open(path))
        if fx["method"] != "POST":
            continue
        headers = {k: v for k, v in fx["headers"].items() if k not in ("content-length", "host", "accept-encoding")}
        if "x-api-key" in headers:
            headers["x-api-key"] = KEY
        if "authorization" in headers:
            headers["authorization"] = "Bearer " + KEY
        q = "?" + fx["query"] if fx.get("query") else ""
        status, _, raw = http(fake, "POST", fx["path"] + q, fx["body"], headers)
        assert status == 200, (path, raw[:300])
        name = os.path.basename(path)
        text = _reply_text(fx["path"], fx["body"], raw)
        if name in expect:
            assert text == expect[name], name


def _reply_text(path, body, raw):
    if path.endswith("count_tokens"):
        assert json.loads(raw)["input_tokens"] > 0
        return None
    out = []
    if not body.get("stream"):
        obj = json.loads(raw)
        if "choices" in obj:
            return obj["choices"][0]["message"]["content"]
        return "".join(b.get("text", "") for b in obj["content"])
    for line in raw.decode().split("\n"):
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        d = json.loads(line[6:])
        if d.get("type") == "content_block_delta" and d["delta"]["type"] == "text_delta":
            out.append(d["delta"]["text"])
        elif d.get("choices"):
            out.append(d["choices"][0]["delta"].get("content") or "")
    return "".join(out)


def test_subprocess_runner():
    with FakeUpstreamProcess(chunks=5, key="k2") as proc:
        with anthropic.Anthropic(base_url=proc.url, api_key="k2", max_retries=0) as c:
            events = [e for e in a_create(c, "hi", stream=True) if e.type == "content_block_delta"]
        assert len(events) == 5
        with openai.OpenAI(base_url=proc.openai_url, api_key="k2", max_retries=0) as c:
            assert o_create(c, "SAY: sub").choices[0].message.content == "sub"
    assert proc.proc is None


def test_non_stream_truncate_and_hang_midstream(ant, oai):
    with pytest.raises(anthropic.APIConnectionError):
        a_create(ant, "FAIL: truncate")
    with pytest.raises(openai.APIConnectionError):
        o_create(oai, "FAIL: truncate")
    t = time.monotonic()
    events = list(a_create(ant, "FAIL: hang_midstream", stream=True, extra_headers={"x-fake-hang-ms": "200"}))
    assert time.monotonic() - t >= 0.2 and events[-1].type == "message_stop"
    t = time.monotonic()
    assert o_create(oai, "FAIL: hang_midstream", extra_headers={"x-fake-hang-ms": "200"}).choices[0].message.content \
        == DEFAULT_TEXT
    assert time.monotonic() - t >= 0.2


# ---------------------------------------------------------------- Responses: multi-step turns (steps.py)

STEPS_TOOLS = [{"type": "function", "name": "exec_command", "parameters": {"type": "object", "properties": {
    "cmd": {"type": "string"}}, "required": ["cmd"]}},
    {"type": "custom", "name": "apply_patch", "description": "patch"}]  # fmt: skip
STEPS_PROMPT = ('Read, patch, say.\nUSE_TOOL: exec_command {"cmd": "cat a"}\nUSE_TOOL: exec_command {"cmd": "cat b"}'
                '\nTHEN: USE_TOOL: apply_patch *** Begin Patch\nTHEN: SAY: all done')  # fmt: skip


def _step(oai, items):
    """One request; -> (its output items as dicts, the input the next request sends: items + calls + outputs)."""
    out = [o.model_dump(exclude_none=True) for o in oai.responses.create(model=MODEL_O, input=items,
                                                                        tools=STEPS_TOOLS).output]  # fmt: skip
    calls = [o for o in out if o["type"] in ("function_call", "custom_tool_call")]
    outputs = [{"type": f"{c['type']}_output", "call_id": c["call_id"], "output": "ran " + c["name"]} for c in calls]
    return out, items + calls + outputs


def test_responses_then_lines_chain_tool_calls_within_one_turn(oai):
    items = [{"role": "user", "content": STEPS_PROMPT}]
    first, items = _step(oai, items)  # THEN lines are not read on the first request: only its two parallel calls
    assert [(o["type"], o.get("arguments")) for o in first] == [
        ("function_call", '{"cmd":"cat a"}'), ("function_call", '{"cmd":"cat b"}')]
    second, items = _step(oai, items)  # both calls back: step 1, the freeform tool, with a fresh call id
    assert [(o["type"], o["name"], o["input"], o["call_id"]) for o in second] == [
        ("custom_tool_call", "apply_patch", "*** Begin Patch", "call_fake_3")]
    third, items = _step(oai, items)
    assert [o["content"][0]["text"] for o in third] == ["all done"]
    assert _step(oai, [{"role": "user", "content": "USE_TOOL: exec_command {\"cmd\": \"x\"}"}])[1][-1]["output"] \
        == "ran exec_command"  # no THEN line: unchanged
    extra = [{"type": "custom_tool_call", "call_id": "c9", "name": "apply_patch", "input": ""},
             {"type": "custom_tool_call_output", "call_id": "c9", "output": "more"}]
    (past,), _ = _step(oai, items + extra)  # more calls than the steps made: the usual answer to tool results
    assert past["content"][0]["text"] == "Done: more"
