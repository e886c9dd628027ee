"""formats.responses StreamEncoder and Relay (docs/responses.md R-1, R-2, R-3, R-5, R-10): canonical events -> the
Responses SSE grammar, checked with the official openai SDK (its SSE decoder, its event types in strict mode,
and its `responses.stream()` accumulator) over an httpx MockTransport, split at every byte boundary."""

import copy
import json
from itertools import count

import httpx
import openai
import pytest
from openai._streaming import SSEDecoder
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from proxy.canonical import (
    BlockDelta,
    BlockStart,
    BlockStop,
    ChatResponse,
    MessageDelta,
    MessageStart,
    MessageStop,
    Ping,
    RedactedThinking,
    StreamError,
    TargetOptions,
    Text,
    Thinking,
    ToolUse,
    Usage,
)
from proxy.errors import UpstreamError
from proxy.formats import responses
from proxy.formats.responses import StreamEncoder, ids, parse_request, reasoning, render_response

EVENT_TYPE = TypeAdapter(ResponseStreamEvent)
TOOLS = [
    {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}},
    {"type": "custom", "name": "apply_patch"},
]
REQ = parse_request({"model": "my-alias", "input": "hi", "stream": True, "tools": TOOLS})

# An Anthropic-shaped answer: thinking, two text blocks, a function call (spaced JSON, in pieces), a freeform call.
EVENTS = [
    MessageStart("msg_1", "claude-x", Usage(input_tokens=10, cache_read_tokens=100, cache_write_tokens=5)),
    Ping(),
    BlockStart(0, Thinking("", "")),
    BlockDelta(0, "thinking", "Let me "),
    BlockDelta(0, "thinking", "see."),
    BlockDelta(0, "signature", "EqQBCkYI=="),
    BlockStop(0),
    BlockStart(1, Text("")),
    BlockDelta(1, "text", "Hello "),
    BlockDelta(1, "text", ""),
    BlockDelta(1, "text", "wörld 日本"),
    BlockStop(1),
    BlockStart(2, Text("")),
    BlockDelta(2, "text", "Second part."),
    BlockStop(2),
    BlockStart(3, ToolUse("toolu_a", "get_weather", {})),
    BlockDelta(3, "input_json", ""),
    BlockDelta(3, "input_json", '{"city": "Par'),
    BlockDelta(3, "input_json", 'is, FR", "days" : [1, 2]}'),
    BlockStop(3),
    BlockStart(4, ToolUse("toolu_b", "apply_patch", {})),
    BlockDelta(4, "input_json", '{"input": "*** Begin Patch\\n+ä \\"q\\"'),
    BlockDelta(4, "input_json", '\\n*** End Patch"}'),
    BlockStop(4),
    MessageDelta("tool_use", None, Usage(10, 42, 100, 5, reasoning_tokens=7)),
    MessageStop(),
]


@pytest.fixture(autouse=True)
def fixed_ids(monkeypatch):
    """Counter ids and a fixed clock; calling the fixture's value restarts the counter."""
    state = {"counter": count(1)}
    monkeypatch.setattr(ids, "new_id", lambda prefix: f"{prefix}_{next(state['counter']):04d}")
    monkeypatch.setattr(ids, "now", lambda: 1_700_000_000)
    return lambda: state.update(counter=count(1))


@pytest.fixture(autouse=True)
def unsealed():
    """Sealing off unless a test asks for `sealing`: start-up (proxy.apps) turns it on with the gateway's key, and
    a sealed item differs on every encoding (a random nonce)."""
    reasoning.configure(None)
    yield
    reasoning.configure(None)


@pytest.fixture
def sealing(unsealed):
    reasoning.configure(b"test gateway secret")
    yield
    reasoning.configure(None)


def encode(events, req=REQ) -> bytes:
    encoder = StreamEncoder(req)
    return b"".join(encoder.encode(event) for event in events)


def frames(stream: bytes) -> list[tuple[str, dict]]:
    """(event name, payload) per SSE event, asserting the framing: `event:` line, one `data:` line."""
    assert stream.endswith(b"\n\n")
    parsed = []
    for frame in stream.decode().split("\n\n")[:-1]:
        if frame.startswith(":"):  # keep-alive comment
            continue
        name_line, data_line = frame.split("\n")
        parsed.append((name_line.removeprefix("event: "), json.loads(data_line.removeprefix("data: "))))
    return parsed


def payloads(stream: bytes, kind: str | None = None) -> list[dict]:
    return [payload for name, payload in frames(stream) if kind is None or name == kind]


def accumulate(events) -> ChatResponse:
    """The answer the events describe, folded independently of the encoder."""
    blocks, raw, stop_reason, usage = {}, {}, "end_turn", Usage()
    for event in events:
        if isinstance(event, MessageStart):
            usage = event.usage
        elif isinstance(event, BlockStart):
            blocks[event.index] = event.block
            raw[event.index] = ""
        elif isinstance(event, BlockDelta):
            block = blocks[event.index]
            if event.kind == "text":
                block.text += event.value
            elif event.kind == "thinking":
                block.thinking += event.value
            elif event.kind == "signature":
                block.signature += event.value
            else:
                raw[event.index] += event.value
        elif isinstance(event, MessageDelta):
            stop_reason, usage = event.stop_reason, event.usage
    content = []
    for index in sorted(blocks):
        block = blocks[index]
        if isinstance(block, ToolUse):
            block = ToolUse(block.id, block.name, json.loads(raw[index] or "{}"))
        content.append(block)
    return ChatResponse(id="msg_1", model="claude-x", content=content, stop_reason=stop_reason, usage=usage)


def fresh_events(events):
    """Canonical blocks are mutable; accumulate() edits them, so each use gets its own copies."""
    return copy.deepcopy(events)


def sdk_client(chunks: list[bytes]) -> openai.OpenAI:
    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=iter(chunks))

    http_client = httpx.Client(transport=httpx.MockTransport(handler))
    return openai.OpenAI(
        api_key="k", base_url="http://gw.test/v1", http_client=http_client, _strict_response_validation=True
    )


def plain(value):
    """A Response (or item) as JSON, without the `parsed*` fields the SDK's Parsed* types add."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json", exclude_unset=True)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if k not in ("parsed", "parsed_arguments")}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def sdk_run(chunks: list[bytes]):
    """All events the SDK's `responses.stream()` yields, and its final Response."""
    with sdk_client(chunks).responses.stream(model="my-alias", input="hi") as stream:
        seen = list(stream)
        return seen, stream.get_final_response()


# --- grammar (R-1) -------------------------------------------------------------------------------------------


def test_every_event_is_named_like_its_type_and_numbered_from_zero_R1():
    parsed = frames(encode(fresh_events(EVENTS)))
    assert all(name == payload["type"] for name, payload in parsed)
    assert [payload["sequence_number"] for _, payload in parsed] == list(range(len(parsed)))
    names = [name for name, _ in parsed]
    assert names[:2] == ["response.created", "response.in_progress"] and names[-1] == "response.completed"
    assert names.count("response.output_item.added") == names.count("response.output_item.done") == 4


def test_every_event_validates_against_the_sdk_types_in_strict_mode():
    for _, payload in frames(encode(fresh_events(EVENTS))):
        EVENT_TYPE.validate_python(payload, strict=True)


def test_created_and_in_progress_carry_the_empty_response():
    created, in_progress = payloads(encode(fresh_events(EVENTS)))[:2]
    assert created["response"] == in_progress["response"]
    response = Response.model_validate(created["response"])
    assert response.status == "in_progress" and response.output == [] and response.usage is None
    assert response.id == "resp_0001" and response.model == "my-alias"


def test_the_exact_event_sequence():
    names = [
        (name, payload.get("output_index"), payload.get("content_index", payload.get("summary_index")))
        for name, payload in frames(encode(fresh_events(EVENTS)))
    ]
    assert names == [
        ("response.created", None, None),
        ("response.in_progress", None, None),
        ("response.output_item.added", 0, None),
        ("response.reasoning_summary_part.added", 0, 0),
        ("response.reasoning_summary_text.delta", 0, 0),
        ("response.reasoning_summary_text.delta", 0, 0),
        ("response.reasoning_summary_text.done", 0, 0),
        ("response.reasoning_summary_part.done", 0, 0),
        ("response.output_item.done", 0, None),
        ("response.output_item.added", 1, None),
        ("response.content_part.added", 1, 0),
        ("response.output_text.delta", 1, 0),
        ("response.output_text.delta", 1, 0),  # the empty delta was skipped (P-6)
        ("response.output_text.done", 1, 0),
        ("response.content_part.done", 1, 0),
        ("response.content_part.added", 1, 1),  # the second text block continues the same message
        ("response.output_text.delta", 1, 1),
        ("response.output_text.done", 1, 1),
        ("response.content_part.done", 1, 1),
        ("response.output_item.done", 1, None),
        ("response.output_item.added", 2, None),
        ("response.function_call_arguments.delta", 2, None),
        ("response.function_call_arguments.delta", 2, None),
        ("response.function_call_arguments.done", 2, None),
        ("response.output_item.done", 2, None),
        ("response.output_item.added", 3, None),
        ("response.custom_tool_call_input.delta", 3, None),
        ("response.custom_tool_call_input.done", 3, None),
        ("response.output_item.done", 3, None),
        ("response.completed", None, None),
    ]


# --- through the official SDK --------------------------------------------------------------------------------


def test_sse_split_at_every_byte_boundary_decodes_to_the_same_events():
    stream = encode(fresh_events(EVENTS))
    whole = [(sse.event, sse.data) for sse in SSEDecoder().iter_bytes(iter([stream]))]
    assert len(whole) == len(frames(stream))
    for cut in range(1, len(stream)):
        split = [(sse.event, sse.data) for sse in SSEDecoder().iter_bytes(iter([stream[:cut], stream[cut:]]))]
        assert split == whole, f"split at byte {cut}"


def test_sdk_accumulator_fed_one_byte_at_a_time_gives_the_completed_response():
    stream = encode(fresh_events(EVENTS))
    completed = payloads(stream, "response.completed")[0]["response"]
    seen, final = sdk_run([stream[i : i + 1] for i in range(len(stream))])
    assert plain(final) == plain(Response.model_validate(completed))
    assert final.output_text == "Hello wörld 日本Second part."
    assert [event.type for event in seen] == [name for name, _ in frames(stream)]


def test_completed_response_equals_render_response_for_the_accumulated_answer(fixed_ids):
    stream = encode(fresh_events(EVENTS))
    completed = payloads(stream, "response.completed")[0]["response"]
    fixed_ids()  # render_response draws the same ids in the same order
    assert completed == render_response(accumulate(fresh_events(EVENTS)), REQ)


def test_what_the_deltas_build_is_what_the_done_events_and_the_final_response_say():
    stream = encode(fresh_events(EVENTS))
    seen, final = sdk_run([stream])
    text_snapshots = [e.snapshot for e in seen if e.type == "response.output_text.delta"]
    argument_snapshots = [e.snapshot for e in seen if e.type == "response.function_call_arguments.delta"]
    done_items = [e.item for e in seen if e.type == "response.output_item.done"]
    assert plain(done_items) == plain(final.output)
    message, call, custom = final.output[1], final.output[2], final.output[3]
    assert text_snapshots[-1] == message.content[1].text == "Second part."
    assert argument_snapshots[-1] == call.arguments == '{"city":"Paris, FR","days":[1,2]}'  # whitespace gone
    assert json.loads(call.arguments) == {"city": "Paris, FR", "days": [1, 2]}
    assert (call.call_id, call.name, call.status) == ("toolu_a", "get_weather", "completed")
    assert custom.type == "custom_tool_call" and custom.input == '*** Begin Patch\n+ä "q"\n*** End Patch'
    assert final.usage.input_tokens == 115 and final.usage.input_tokens_details.cached_tokens == 100
    assert final.usage.output_tokens_details.reasoning_tokens == 7 and final.usage.total_tokens == 157


def test_final_response_is_kept_for_storage():
    encoder = StreamEncoder(REQ)
    stream = b"".join(encoder.encode(event) for event in fresh_events(EVENTS))
    assert encoder.final_response == payloads(stream, "response.completed")[0]["response"]


def test_what_codex_reads_output_items_done_and_the_completion():
    """Codex (codex-api sse/responses.rs) acts on output_item.done items and response.completed's id and usage."""
    parsed = payloads(encode(fresh_events(EVENTS)))
    items = [p["item"] for p in parsed if p["type"] == "response.output_item.done"]
    assert [item["type"] for item in items] == ["reasoning", "message", "function_call", "custom_tool_call"]
    assert items[2]["call_id"] == "toolu_a" and items[3]["input"].startswith("*** Begin Patch")
    completed = parsed[-1]["response"]
    assert completed["id"] == parsed[0]["response"]["id"]
    assert completed["usage"]["input_tokens_details"]["cached_tokens"] == 100


# --- block kinds ---------------------------------------------------------------------------------------------


def test_tool_call_without_argument_bytes_gets_an_empty_object():
    events = [MessageStart("m", "x", Usage()), BlockStart(0, ToolUse("toolu_1", "get_weather", {})), BlockStop(0),
              MessageDelta("tool_use", None, Usage(output_tokens=3)), MessageStop()]  # fmt: skip
    parsed = payloads(encode(events))
    deltas = [p["delta"] for p in parsed if p["type"] == "response.function_call_arguments.delta"]
    assert deltas == ["{}"] and parsed[-1]["response"]["output"][0]["arguments"] == "{}"


def test_whitespace_inside_argument_strings_survives_the_minifier():
    pieces = ['{ "cmd" : "ls  -la\\"', ' x\\\\"', ' ,\n "n": 1 }']
    events = [MessageStart("m", "x", Usage()), BlockStart(0, ToolUse("t", "get_weather", {})),
              *(BlockDelta(0, "input_json", piece) for piece in pieces), BlockStop(0), MessageStop()]  # fmt: skip
    arguments = payloads(encode(events), "response.function_call_arguments.done")[0]["arguments"]
    assert arguments == '{"cmd":"ls  -la\\" x\\\\","n":1}'
    assert json.loads(arguments) == json.loads("".join(pieces))


def test_text_after_a_tool_call_opens_a_new_message():
    events = [MessageStart("m", "x", Usage()), BlockStart(0, Text("")), BlockDelta(0, "text", "a"), BlockStop(0),
              BlockStart(1, ToolUse("t", "get_weather", {})), BlockStop(1), BlockStart(2, Text("")),
              BlockDelta(2, "text", "b"), BlockStop(2), MessageStop()]  # fmt: skip
    output = payloads(encode(events))[-1]["response"]["output"]
    assert [(item["type"], item["id"]) for item in output] == [
        ("message", "msg_0002"), ("function_call", "fc_0003"), ("message", "msg_0004")
    ]


def test_an_empty_text_block_opens_nothing_P6():
    events = [MessageStart("m", "x", Usage()), BlockStart(0, Text("")), BlockStop(0), MessageStop()]
    parsed = payloads(encode(events))
    assert [p["type"] for p in parsed] == ["response.created", "response.in_progress", "response.completed"]
    assert parsed[-1]["response"]["output"] == []


def test_reasoning_is_sealed_in_the_done_item_and_opens_to_the_signed_block_R5(sealing):
    events = [MessageStart("m", "x", Usage()), BlockStart(0, Thinking("", "")), BlockDelta(0, "thinking", "Hm."),
              BlockDelta(0, "signature", "sig=="), BlockStop(0), BlockStart(1, RedactedThinking("opaque")),
              BlockStop(1), MessageStop()]  # fmt: skip
    parsed = payloads(encode(events))
    added = [p["item"] for p in parsed if p["type"] == "response.output_item.added"]
    done = [p["item"] for p in parsed if p["type"] == "response.output_item.done"]
    assert all("encrypted_content" not in item for item in added)
    assert done[0]["summary"] == [{"type": "summary_text", "text": "Hm."}] and done[1]["summary"] == []
    assert reasoning.open_sealed(done[0]["encrypted_content"]) == [Thinking("Hm.", "sig==")]
    assert reasoning.open_sealed(done[1]["encrypted_content"]) == [RedactedThinking("opaque")]
    assert parsed[-1]["response"]["output"] == done


def test_a_ping_is_an_sse_comment_the_sdk_skips():
    encoder = StreamEncoder(REQ)
    assert encoder.encode(Ping()) == b": ping\n\n"
    stream = encode([Ping(), *fresh_events(EVENTS)])
    assert stream.startswith(b": ping\n\n")
    _, final = sdk_run([stream])
    assert final.status == "completed"


# --- incomplete (R-10) ---------------------------------------------------------------------------------------


def test_max_tokens_ends_with_response_incomplete_R10(fixed_ids):
    events = [MessageStart("m", "x", Usage(input_tokens=5)), BlockStart(0, Text("")),
              BlockDelta(0, "text", "The answer is"), BlockStop(0),
              MessageDelta("max_tokens", None, Usage(5, 16)), MessageStop()]  # fmt: skip
    stream = encode(fresh_events(events))
    parsed = payloads(stream)
    done = [p["item"] for p in parsed if p["type"] == "response.output_item.done"]
    assert done[0]["status"] == "incomplete"
    assert parsed[-1]["type"] == "response.incomplete"
    response = Response.model_validate(parsed[-1]["response"])
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"
    fixed_ids()
    assert parsed[-1]["response"] == render_response(accumulate(fresh_events(events)), REQ)
    # the SDK passes response.incomplete on; like against OpenAI, only a completed response is "final"
    with sdk_client([stream]).responses.stream(model="my-alias", input="hi") as sdk_stream:
        seen = list(sdk_stream)
        assert seen[-1].type == "response.incomplete" and seen[-1].response.output[0].status == "incomplete"
        with pytest.raises(RuntimeError, match="response.completed"):
            sdk_stream.get_final_response()


def test_a_tool_call_cut_by_max_tokens_is_an_incomplete_item():
    events = [MessageStart("m", "x", Usage()), BlockStart(0, ToolUse("t", "get_weather", {})),
              BlockDelta(0, "input_json", '{"city": "Par'), MessageDelta("max_tokens", None, Usage()), MessageStop()]
    parsed = payloads(encode(events))
    item = parsed[-1]["response"]["output"][0]
    assert (item["status"], item["arguments"]) == ("incomplete", '{"city":"Par')
    assert [p["type"] for p in parsed].count("response.function_call_arguments.done") == 1


# --- failure (R-2) -------------------------------------------------------------------------------------------


def failing_events():
    return [*fresh_events(EVENTS)[:9], StreamError(UpstreamError("upstream stream ended early", kind="api_error"))]


def test_a_failure_mid_stream_ends_with_error_and_response_failed_never_completed_R2():
    encoder = StreamEncoder(REQ)
    stream = b"".join(encoder.encode(event) for event in failing_events())
    assert encoder.encode(MessageStop()) == b"" and encoder.encode(Ping()) == b""  # nothing after the end
    parsed = frames(stream)
    assert [name for name, _ in parsed][-2:] == ["error", "response.failed"]
    assert "response.completed" not in [name for name, _ in parsed]
    assert [p["sequence_number"] for _, p in parsed] == list(range(len(parsed)))
    error = parsed[-2][1]
    assert (error["code"], error["message"], error["param"]) == (None, "upstream stream ended early", None)
    assert error["error"] == {"type": "server_error", "code": None, "message": "upstream stream ended early",
                              "param": None}  # the live API's nested object, on which the SDK raises
    failed = Response.model_validate(parsed[-1][1]["response"], strict=False)
    assert failed.status == "failed" and failed.error.code == "server_error"
    assert failed.id == parsed[0][1]["response"]["id"]
    # what was streamed stays visible: the reasoning item, and the message cut short
    assert [item.type for item in failed.output] == ["reasoning", "message"]
    assert failed.output[1].status == "incomplete" and failed.output[1].content[0].text == "Hello "
    assert encoder.final_response == parsed[-1][1]["response"]


def test_the_sdk_raises_on_a_failed_stream():
    stream = encode(failing_events())
    received = []
    with pytest.raises(openai.APIError, match="ended early"):
        with sdk_client([stream]).responses.stream(model="my-alias", input="hi") as sdk_stream:
            for event in sdk_stream:
                received.append(event.type)
    assert received[:2] == ["response.created", "response.in_progress"] and "response.output_text.delta" in received


def test_a_reasoning_item_cut_by_a_failure_is_not_sealed(sealing):
    """Its signature never arrived: a sealed copy would be replayed to Anthropic and rejected."""
    events = [MessageStart("m", "x", Usage()), BlockStart(0, Thinking("", "")), BlockDelta(0, "thinking", "Hm"),
              StreamError(UpstreamError("cut", kind="api_error"))]  # fmt: skip
    failed = payloads(encode(events))[-1]["response"]
    assert failed["output"] == [{"id": "rs_0002", "type": "reasoning", "summary": [{"type": "summary_text",
                                                                                    "text": "Hm"}]}]  # fmt: skip


def test_a_failure_before_anything_still_opens_the_response_first():
    parsed = frames(encode([StreamError(UpstreamError("Overloaded", kind="overloaded"))]))
    assert [name for name, _ in parsed] == ["response.created", "response.in_progress", "error", "response.failed"]
    assert parsed[-1][1]["response"]["output"] == []


def test_rate_limit_failure_tells_codex_when_to_retry():
    err = UpstreamError("Rate limited.", kind="rate_limit", retry_after="2")
    failed = frames(encode([MessageStart("m", "x", Usage()), StreamError(err)]))[-1][1]["response"]
    assert failed["error"]["code"] == "rate_limit_exceeded"
    assert failed["error"]["message"] == "Rate limited. Please try again in 2s."


# --- pass-through: Relay -------------------------------------------------------------------------------------

UPSTREAM_STREAM = b": keep-alive\n\n" + encode(fresh_events(EVENTS))


def relay(chunks: list[bytes]):
    r = responses.Relay({"model": "m", "stream": True})
    out = b"".join(r.feed(chunk) for chunk in chunks) + r.finish()
    return r, out


def test_relay_forwards_bytes_unchanged_and_reads_usage():
    r, out = relay([UPSTREAM_STREAM])
    assert out == UPSTREAM_STREAM
    assert r.complete and r.error is None
    assert r.usage == Usage(input_tokens=10, output_tokens=42, cache_read_tokens=100, cache_write_tokens=5,
                            reasoning_tokens=7)  # fmt: skip


def test_relay_works_for_a_split_at_every_byte_boundary():
    whole, _ = relay([UPSTREAM_STREAM])
    for cut in range(1, len(UPSTREAM_STREAM)):
        split, out = relay([UPSTREAM_STREAM[:cut], UPSTREAM_STREAM[cut:]])
        assert out == UPSTREAM_STREAM and split.usage == whole.usage and split.complete, f"split at byte {cut}"


def test_relay_ends_a_truncated_stream_with_response_failed_R2():
    cut = UPSTREAM_STREAM.index(b"event: response.output_item.added")
    r, out = relay([UPSTREAM_STREAM[:cut]])
    assert out == UPSTREAM_STREAM[:cut]  # finish() adds nothing: the core decides how to end the stream
    assert not r.complete and r.error is not None and r.error.kind == "api_error"
    tail = frames(r.fail(r.error))
    assert r.fail(r.error) == b""  # once
    upstream_events = frames(UPSTREAM_STREAM[:cut])
    assert [name for name, _ in tail] == ["error", "response.failed"]
    assert [p["sequence_number"] for _, p in tail] == [len(upstream_events), len(upstream_events) + 1]
    failed = Response.model_validate(tail[1][1]["response"])
    assert failed.status == "failed" and failed.id == upstream_events[0][1]["response"]["id"]


def test_relay_fail_after_a_complete_stream_adds_nothing():
    r, _ = relay([UPSTREAM_STREAM])
    assert r.fail(UpstreamError("late", kind="api_error")) == b"" and r.error is None


def test_relay_records_an_upstream_error_event_and_adds_nothing():
    error = (
        b'event: error\ndata: {"type":"error","sequence_number":2,"error":{"type":"tokens",'
        b'"code":"rate_limit_exceeded","message":"Slow down","param":null}}\n\n'
    )
    head = UPSTREAM_STREAM[: UPSTREAM_STREAM.index(b"event: response.output_item.added")]
    r, out = relay([head + error])
    assert out == head + error
    assert r.error.kind == "rate_limit" and "Slow down" in r.error.message and not r.complete


def test_relay_without_event_lines_still_finds_the_end():
    plain = b"".join(
        b"data: " + frame.split(b"\ndata: ")[1] + b"\n\n"
        for frame in UPSTREAM_STREAM.split(b"\n\n")[:-1]
        if not frame.startswith(b":")
    )
    r, out = relay([plain])
    assert out == plain and r.complete and r.usage.output_tokens == 42


def test_passthrough_request_swaps_only_the_model():
    body = {"model": "alias", "input": "hi", "tools": [{"type": "web_search"}], "store": False}
    forwarded = responses.passthrough_request(body, TargetOptions(remote_model="gpt-5"))
    assert forwarded == {**body, "model": "gpt-5"} and list(forwarded) == list(body) and body["model"] == "alias"
