"""Anthropic SSE both ways (docs/translation.md §2.4, §5.11, P-1, P-22): StreamEncoder for Anthropic callers,
StreamDecoder for Anthropic upstreams, checked against the official SDK's SSE decoder and message accumulator."""

import json
import random

import pytest
from anthropic._streaming import SSEDecoder
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import RawMessageStreamEvent
from pydantic import TypeAdapter

from proxy.canonical import (
    BlockDelta,
    BlockStart,
    BlockStop,
    ChatRequest,
    Message,
    MessageDelta,
    MessageStart,
    MessageStop,
    Ping,
    RedactedThinking,
    ResponseFormat,
    StreamError,
    Text,
    Thinking,
    ToolUse,
    Usage,
)
from proxy.errors import InvalidRequest, RawError, UpstreamError
from proxy.formats import anthropic
from proxy.formats.sse import SSEParser

REQUEST = ChatRequest(model="claude-client-alias", messages=[Message("user", [Text("hi")])])
JSON_REQUEST = ChatRequest(
    model="gpt-client",
    messages=REQUEST.messages,
    response_format=ResponseFormat("json_schema", schema={"type": "object"}),
)
EVENT_SCHEMA = TypeAdapter(RawMessageStreamEvent)


def sse(name: str, payload: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


def delta(index: int, kind: str, field: str, value: str) -> bytes:
    payload = {"type": "content_block_delta", "index": index, "delta": {"type": kind, field: value}}
    return sse("content_block_delta", payload)


def block(index: int, content_block: dict) -> bytes:
    return sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": content_block})


def stop(index: int) -> bytes:
    return sse("content_block_stop", {"type": "content_block_stop", "index": index})


MESSAGE_START = sse("message_start", {"type": "message_start", "message": {
    "model": "claude-sonnet-4-5-20250929", "id": "msg_01Abc", "type": "message", "role": "assistant", "content": [],
    "stop_reason": None, "stop_sequence": None,
    "usage": {"input_tokens": 472, "cache_creation_input_tokens": 10, "cache_read_input_tokens": 2048,
              "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 0},
              "output_tokens": 2, "service_tier": "standard"}}})
MESSAGE_DELTA = sse("message_delta", {
    "type": "message_delta",
    "delta": {"stop_reason": "tool_use", "stop_sequence": None},
    "usage": {"output_tokens": 189},
})
MESSAGE_STOP = sse("message_stop", {"type": "message_stop"})

# A recorded-shape upstream stream: signed thinking, text, two tool_use blocks; multi-byte text; pings; "" fragments.
RECORDED = b"".join([
    MESSAGE_START,
    block(0, {"type": "thinking", "thinking": "", "signature": ""}),
    delta(0, "thinking_delta", "thinking", "The user wants the café in 日本."),
    b'event: ping\ndata: {"type": "ping"}\n\n',
    delta(0, "thinking_delta", "thinking", " Two lookups."),
    delta(0, "signature_delta", "signature", "EqQBCkYIBxgCKkA+sig=="),
    stop(0),
    block(1, {"type": "text", "text": ""}),
    delta(1, "text_delta", "text", "Je vérifie 日本語…"),
    stop(1),
    block(2, {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {}}),
    delta(2, "input_json_delta", "partial_json", ""),
    delta(2, "input_json_delta", "partial_json", '{"city": "Kyō'),
    delta(2, "input_json_delta", "partial_json", 'to"}'),
    stop(2),
    block(3, {"type": "tool_use", "id": "toolu_01B", "name": "get_time", "input": {}}),
    delta(3, "input_json_delta", "partial_json", '{"tz": "Asia/Tokyo"}'),
    stop(3),
    MESSAGE_DELTA,
    MESSAGE_STOP,
])

START_USAGE = Usage(input_tokens=472, output_tokens=2, cache_read_tokens=2048, cache_write_tokens=10)
FINAL_USAGE = Usage(input_tokens=472, output_tokens=189, cache_read_tokens=2048, cache_write_tokens=10)
EXPECTED = [
    MessageStart("msg_01Abc", "claude-sonnet-4-5-20250929", START_USAGE),
    BlockStart(0, Thinking("", "")),
    BlockDelta(0, "thinking", "The user wants the café in 日本."),
    Ping(),
    BlockDelta(0, "thinking", " Two lookups."),
    BlockDelta(0, "signature", "EqQBCkYIBxgCKkA+sig=="),
    BlockStop(0),
    BlockStart(1, Text("")),
    BlockDelta(1, "text", "Je vérifie 日本語…"),
    BlockStop(1),
    BlockStart(2, ToolUse("toolu_01A", "get_weather", {})),
    BlockDelta(2, "input_json", ""),
    BlockDelta(2, "input_json", '{"city": "Kyō'),
    BlockDelta(2, "input_json", 'to"}'),
    BlockStop(2),
    BlockStart(3, ToolUse("toolu_01B", "get_time", {})),
    BlockDelta(3, "input_json", '{"tz": "Asia/Tokyo"}'),
    BlockStop(3),
    MessageDelta("tool_use", None, FINAL_USAGE),
    MessageStop(),
]


def decode(chunks, req=REQUEST) -> list:
    decoder = anthropic.StreamDecoder(req)
    events = [e for chunk in chunks for e in decoder.feed(chunk)]
    return events + decoder.finish()


def encode(events, req=REQUEST) -> bytes:
    encoder = anthropic.StreamEncoder(req)
    return b"".join(encoder.encode(e) for e in events)


def sdk_events(data: bytes) -> list[tuple[str, dict]]:
    """What the official SDK's SSE decoder sees in these bytes."""
    return [(e.event, e.json()) for e in SSEDecoder().iter_bytes(iter([data]))]


def sdk_message(data: bytes):
    """The message the official SDK builds from a stream: its Stream skips pings and events without an `event:`
    line, then accumulates (strict per-event validation added here)."""
    snapshot, json_bufs = None, {}
    for name, payload in sdk_events(data):
        if name in ("ping", None):
            continue
        event = EVENT_SCHEMA.validate_python(payload)
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=json_bufs)
    return snapshot


# --- StreamDecoder ------------------------------------------------------------------------------------------


def test_decoder_maps_a_recorded_stream_one_to_one():
    assert decode([RECORDED]) == EXPECTED


def test_decoder_gives_identical_events_for_a_split_at_every_byte_boundary():
    for cut in range(1, len(RECORDED)):
        assert decode([RECORDED[:cut], RECORDED[cut:]]) == EXPECTED, f"split at byte {cut}"


def test_decoder_handles_crlf_streams_split_everywhere_including_between_cr_and_lf():
    crlf = RECORDED.replace(b"\n", b"\r\n")
    for cut in range(1, len(crlf)):
        assert decode([crlf[:cut], crlf[cut:]]) == EXPECTED, f"split at byte {cut}"


def test_decoder_handles_one_byte_and_random_chunks():
    assert decode([RECORDED[i : i + 1] for i in range(len(RECORDED))]) == EXPECTED
    rng = random.Random(7)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(RECORDED)), 12))
        chunks = [RECORDED[a:b] for a, b in zip([0, *cuts], [*cuts, len(RECORDED)])]
        assert decode(chunks) == EXPECTED


def test_truncated_stream_ends_in_stream_error_never_a_clean_stop_P22():
    cut = RECORDED.index(b"event: message_delta")
    events = decode([RECORDED[:cut]])
    assert events[:-1] == EXPECTED[:18]
    assert isinstance(events[-1], StreamError)
    assert events[-1].error.kind == "api_error" and "message_stop" in events[-1].error.message


def test_stream_without_message_stop_but_with_message_delta_is_still_truncated():
    events = decode([RECORDED[: RECORDED.index(b"event: message_stop")]])
    assert isinstance(events[-1], StreamError)


def test_error_event_becomes_stream_error_and_ends_the_stream():
    error = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    events = decode([MESSAGE_START, error, MESSAGE_STOP])
    assert len(events) == 2 and isinstance(events[1], StreamError)
    assert (events[1].error.kind, events[1].error.status, events[1].error.message) == ("overloaded", 529, "Overloaded")


def test_unknown_events_and_deltas_are_ignored():
    extra = sse("brand_new_event", {"type": "brand_new_event"}) + delta(0, "citations_delta", "citation", "c")
    events = decode([MESSAGE_START, block(0, {"type": "text", "text": ""}), extra, stop(0), MESSAGE_STOP])
    assert [type(e) for e in events] == [MessageStart, BlockStart, BlockStop, MessageStop]


def test_server_tool_blocks_are_skipped_and_later_indices_stay_contiguous():
    stream = b"".join([
        MESSAGE_START,
        block(0, {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}),
        delta(0, "input_json_delta", "partial_json", '{"query": "q"}'),
        stop(0),
        block(1, {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}),
        stop(1),
        block(2, {"type": "text", "text": ""}),
        delta(2, "text_delta", "text", "found"),
        stop(2),
        MESSAGE_STOP,
    ])
    assert decode([stream])[1:-1] == [BlockStart(0, Text("")), BlockDelta(0, "text", "found"), BlockStop(0)]


def test_message_delta_usage_replaces_only_the_counts_it_carries():
    (_, message_delta, _) = decode([MESSAGE_START, sse("message_delta", {
        "type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 50, "input_tokens": 500}}), MESSAGE_STOP])
    expected = Usage(input_tokens=500, output_tokens=50, cache_read_tokens=2048, cache_write_tokens=10)
    assert message_delta.usage == expected


def test_json_response_tool_streams_as_text_and_ends_the_turn():
    stream = b"".join([
        MESSAGE_START,
        block(0, {"type": "tool_use", "id": "toolu_1", "name": "json_response", "input": {}}),
        delta(0, "input_json_delta", "partial_json", ""),
        delta(0, "input_json_delta", "partial_json", '{"n": '),
        delta(0, "input_json_delta", "partial_json", "3}"),
        stop(0),
        MESSAGE_DELTA,
        MESSAGE_STOP,
    ])
    events = decode([stream], req=JSON_REQUEST)
    assert events[1:5] == [
        BlockStart(0, Text("")), BlockDelta(0, "text", '{"n": '), BlockDelta(0, "text", "3}"), BlockStop(0)
    ]
    assert events[5].stop_reason == "end_turn"
    assert decode([stream])[1] == BlockStart(0, ToolUse("toolu_1", "json_response", {}))  # only for json_schema


# --- StreamEncoder ------------------------------------------------------------------------------------------


def test_encoder_output_pairs_every_event_name_with_its_json_type_and_keeps_indices_contiguous_P22():
    data = encode(EXPECTED)
    events = SSEParser().feed(data)
    assert len(events) == len(EXPECTED)
    started = []
    for event in events:
        payload = json.loads(event.data)
        assert event.event == payload["type"]
        if event.event != "ping":  # the SDK drops pings before typing events
            EVENT_SCHEMA.validate_python(payload)
        if event.event == "content_block_start":
            started.append(payload["index"])
    assert started == list(range(len(started)))
    assert [name for name, _ in sdk_events(data)] == [e.event for e in events]


def test_encoder_emits_exact_anthropic_bytes():
    encoder = anthropic.StreamEncoder(REQUEST)
    assert encoder.encode(MessageStart("msg_1", "upstream-model", Usage(input_tokens=5, cache_read_tokens=7))) == (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
        b'"role":"assistant","model":"claude-client-alias","content":[],"stop_reason":null,"stop_sequence":null,'
        b'"usage":{"input_tokens":5,"cache_creation_input_tokens":0,"cache_read_input_tokens":7,'
        b'"output_tokens":0}}}\n\n'
    )
    assert encoder.encode(BlockStart(0, Thinking(""))) == (
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"thinking","thinking":"","signature":""}}\n\n'
    )
    assert encoder.encode(BlockDelta(0, "input_json", '{"a"')) == (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"input_json_delta","partial_json":"{\\"a\\""}}\n\n'
    )
    assert encoder.encode(BlockStart(1, RedactedThinking("opaque"))) == (
        b'event: content_block_start\ndata: {"type":"content_block_start","index":1,'
        b'"content_block":{"type":"redacted_thinking","data":"opaque"}}\n\n'
    )
    assert encoder.encode(MessageStop()) == b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    assert encoder.encode(Ping()) == b'event: ping\ndata: {"type":"ping"}\n\n'


def test_encoder_forces_tool_use_stop_reason_when_a_tool_block_was_started_P1():
    events = [
        MessageStart("msg_1", "m", Usage()),
        BlockStart(0, ToolUse("call_1", "f", {})),
        BlockDelta(0, "input_json", "{}"),
        BlockStop(0),
        MessageDelta("end_turn", None, Usage(output_tokens=3)),
        MessageStop(),
    ]
    message_delta = json.loads(SSEParser().feed(encode(events))[4].data)
    assert message_delta == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {
            "input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 3
        },
    }


def test_encoder_replaces_a_foreign_message_id():
    payload = json.loads(SSEParser().feed(encode([MessageStart("chatcmpl-9", "m", Usage())]))[0].data)
    assert payload["message"]["id"].startswith("msg_")


def test_stream_error_is_an_error_event_with_render_error_json_P22():
    data = anthropic.StreamEncoder(REQUEST).encode(StreamError(UpstreamError("Overloaded", kind="overloaded")))
    (event,) = SSEParser().feed(data)
    assert event.event == "error"
    assert event.data == anthropic.render_error(UpstreamError("Overloaded", kind="overloaded"))[1]
    assert json.loads(event.data) == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def test_stream_error_with_pretty_printed_raw_body_stays_one_data_line():
    body = b'{\n  "type": "error",\n  "error": {"type": "api_error", "message": "Internal"}\n}'
    error = UpstreamError("Internal", raw=RawError("anthropic", 500, body, {}))
    (event,) = SSEParser().feed(anthropic.StreamEncoder(REQUEST).encode(StreamError(error)))
    assert json.loads(event.data) == json.loads(body)
    assert anthropic.StreamEncoder(REQUEST).encode(StreamError(InvalidRequest("x"))).count(b"\n") == 3


# --- with the official SDK ----------------------------------------------------------------------------------


def test_sdk_accumulates_the_encoded_stream_into_the_right_message():
    message = sdk_message(encode(EXPECTED))
    assert message.model == "claude-client-alias"
    assert message.stop_reason == "tool_use"
    thinking, text, weather, clock = message.content
    assert thinking.thinking == "The user wants the café in 日本. Two lookups."
    assert thinking.signature == "EqQBCkYIBxgCKkA+sig=="
    assert text.text == "Je vérifie 日本語…"
    assert (weather.id, weather.name, weather.input) == ("toolu_01A", "get_weather", {"city": "Kyōto"})
    assert (clock.name, clock.input) == ("get_time", {"tz": "Asia/Tokyo"})
    assert (message.usage.input_tokens, message.usage.output_tokens) == (472, 189)
    assert (message.usage.cache_read_input_tokens, message.usage.cache_creation_input_tokens) == (2048, 10)


def test_sdk_reads_the_recorded_stream_and_our_reencoding_the_same_way():
    original = sdk_message(RECORDED)
    ours = sdk_message(encode(decode([RECORDED]), req=ChatRequest(model=original.model, messages=[])))
    assert ours.content == original.content
    assert (ours.stop_reason, ours.usage.output_tokens) == (original.stop_reason, original.usage.output_tokens)


@pytest.mark.parametrize("cut", [40, 700, 1500])
def test_encoder_and_decoder_agree_on_a_truncated_stream(cut):
    events = decode([RECORDED[:cut]])
    assert isinstance(events[-1], StreamError)
    tail = SSEParser().feed(encode(events))[-1]
    assert tail.event == "error" and json.loads(tail.data)["error"]["type"] == "api_error"


def test_encoder_sanitizes_tool_ids_from_other_providers_P16():
    data = anthropic.StreamEncoder(REQUEST).encode(BlockStart(0, ToolUse("functions.Bash:0", "Bash", {})))
    (event,) = SSEParser().feed(data)
    assert json.loads(event.data)["content_block"]["id"].startswith("functions_Bash_0_")
