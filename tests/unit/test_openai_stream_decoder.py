"""formats.openai.StreamDecoder: an upstream's chunk stream -> canonical events (docs/translation.md §5.11 A)."""

import json
import random

import pytest

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
    StreamError,
    Text,
    Thinking,
    Tool,
    ToolUse,
    Usage,
)
from proxy.formats import thinking_seal
from proxy.formats.openai import StreamDecoder
from proxy.formats.openai.tool_names import shorten
from proxy.tokens import estimate_input_tokens

LONG_NAME = "mcp__some_server__" + "z" * 60
REQ = ChatRequest(
    model="claude-client-name",
    messages=[Message(role="user", content=[Text("Bonjour, café? 日本語で")])],
    tools=[Tool("Read", {"type": "object"}), Tool("Bash", {"type": "object"}), Tool(LONG_NAME, {"type": "object"})],
)


def chunk(delta=None, finish_reason=None, usage=None, choices=True) -> dict:
    body = {"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": "deepseek-reasoner"}
    body["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason}] if choices else []
    if usage is not None:
        body["usage"] = usage
    return body


def wire(*chunks, done=True, newline=b"\n") -> bytes:
    lines = [b"data: " + json.dumps(c, ensure_ascii=False).encode() for c in chunks]
    if done:
        lines.append(b"data: [DONE]")
    return b"".join(line + newline + newline for line in lines)


def call(index, call_id=None, name=None, arguments=None) -> dict:
    fragment = {"index": index, "function": {}}
    if call_id:
        fragment.update(id=call_id, type="function")
    if name is not None:
        fragment["function"]["name"] = name
    if arguments is not None:
        fragment["function"]["arguments"] = arguments
    return {"tool_calls": [fragment]}


USAGE = {"prompt_tokens": 900, "completion_tokens": 120, "total_tokens": 1020,
         "prompt_tokens_details": {"cached_tokens": 600}, "completion_tokens_details": {"reasoning_tokens": 40}}

REASONING_AND_TEXT = wire(
    chunk({"role": "assistant", "content": ""}),
    chunk({"reasoning_content": "Je réfléchis… "}),
    chunk({"reasoning_content": "日本"}),
    chunk({"content": ""}),
    chunk({"content": "Café "}),
    chunk({"content": "日本語 é"}),
    chunk({}, "stop"),
    chunk(usage=USAGE, choices=False),
)

# Three parallel calls whose argument fragments interleave across indices (P-23), one with a long MCP name.
INTERLEAVED_TOOLS = wire(
    chunk({"role": "assistant", "content": "Let me look."}),
    chunk(call(0, "call_a", "Read", "")),
    chunk(call(1, "call_b", "Bash", "")),
    chunk(call(0, arguments='{"file_path": "/tmp/caf')),
    chunk(call(2, "call_c", shorten(LONG_NAME), '{"q"')),
    chunk(call(1, arguments='{"command": "echo 日')),
    chunk(call(0, arguments='é.txt"}')),
    chunk(call(2, arguments=': 1}')),
    chunk(call(1, arguments='本"}')),
    chunk({}, "tool_calls", usage=USAGE),
)


def decode(stream: bytes, pieces: list[int] | None = None, req=REQ) -> list:
    """Feeds `stream` cut at the given offsets, then finishes."""
    decoder = StreamDecoder(req)
    events, start = [], 0
    for end in (pieces or []) + [len(stream)]:
        events += decoder.feed(stream[start:end])
        start = end
    return events + decoder.finish()


def normalised(events: list) -> list:
    return [MessageStart("msg_x", e.model, e.usage) if isinstance(e, MessageStart) else e for e in events]


def assert_grammatical(events: list) -> None:
    """Anthropic's grammar: start, ping, blocks with contiguous indices that never interleave, delta, stop."""
    assert isinstance(events[0], MessageStart) and isinstance(events[1], Ping)
    assert isinstance(events[-2], MessageDelta) and isinstance(events[-1], MessageStop)
    open_index, next_index = None, 0
    for event in events[2:-2]:
        if isinstance(event, BlockStart):
            assert open_index is None and event.index == next_index
            open_index, next_index = event.index, next_index + 1
        elif isinstance(event, BlockDelta):
            assert event.index == open_index and event.value
        elif isinstance(event, BlockStop):
            assert event.index == open_index
            open_index = None
        else:
            raise AssertionError(f"unexpected {event}")
    assert open_index is None


def blocks(events: list) -> list:
    """Each block rebuilt from its start and deltas."""
    built = {}
    for event in events:
        if isinstance(event, BlockStart):
            built[event.index] = [event.block, ""]
        elif isinstance(event, BlockDelta) and event.kind != "signature":  # signatures: see the reasoning test
            built[event.index][1] += event.value
    return [(type(block).__name__, getattr(block, "id", None), getattr(block, "name", None), text)
            for block, text in built.values()]


def test_reasoning_then_text_stream():
    events = decode(REASONING_AND_TEXT)
    assert_grammatical(events)
    start = events[0]
    assert start.id.startswith("msg_") and start.model == "claude-client-name"
    assert start.usage == Usage(input_tokens=estimate_input_tokens(REQ))  # P-26
    assert events[2] == BlockStart(0, Thinking("", ""))
    assert blocks(events) == [("Thinking", None, None, "Je réfléchis… 日本"), ("Text", None, None, "Café 日本語 é")]
    assert events[-2] == MessageDelta("end_turn", None, Usage(300, 120, 600, 0, 40))
    signatures = [e.value for e in events if isinstance(e, BlockDelta) and e.kind == "signature"]
    assert len(signatures) == 1 and thinking_seal.verifies("Je réfléchis… 日本", signatures[0])  # before its stop


def test_interleaved_parallel_tool_calls_become_three_whole_blocks_P23():
    events = decode(INTERLEAVED_TOOLS)
    assert_grammatical(events)
    assert blocks(events) == [
        ("Text", None, None, "Let me look."),
        ("ToolUse", "call_a", "Read", '{"file_path": "/tmp/café.txt"}'),
        ("ToolUse", "call_b", "Bash", '{"command": "echo 日本"}'),
        ("ToolUse", "call_c", LONG_NAME, '{"q": 1}'),  # P-15 name restored
    ]
    assert events[-2].stop_reason == "tool_use"


def test_names_first_then_whole_arguments_out_of_order_P23():
    """Seen from some compatible servers: every call opened with a name and no arguments key, then the
    arguments of 0, 2, 1; and a finish chunk without a delta."""
    events = decode(wire(
        chunk(call(0, "call_0", "Read")),
        chunk(call(1, "call_1", "Bash")),
        chunk(call(2, "call_2", "Read")),
        chunk(call(0, arguments='{"x":1}')),
        chunk(call(2, arguments='{"z":3}')),
        chunk(call(1, arguments='{"y":2}')),
        {"choices": [{"index": 0, "finish_reason": "tool_calls"}]},
    ))
    assert_grammatical(events)
    expected = [("call_0", '{"x":1}'), ("call_1", '{"y":2}'), ("call_2", '{"z":3}')]
    assert [(tool_id, arguments) for _, tool_id, _, arguments in blocks(events)] == expected


def test_reasoning_tool_text_tool_in_arrival_order():
    events = decode(wire(
        chunk({"reasoning_content": "Plan."}),
        chunk(call(1, "call_second", "Bash", "{}")),
        chunk({"content": "Calling tools."}),
        chunk(call(0, "call_first", "Read", "{}")),
        chunk({}, "tool_calls"),
    ))
    assert_grammatical(events)
    assert [b[0] for b in blocks(events)] == ["Thinking", "ToolUse", "Text", "ToolUse"]
    assert events[-2].stop_reason == "tool_use"


def test_sequential_tool_calls_stream_live():
    """The first fragment of call 1 closes call 0 at once when call 0's arguments are complete JSON."""
    decoder = StreamDecoder(REQ)
    head = wire(chunk(call(0, "call_a", "Read", '{"file_path":')), chunk(call(0, arguments=' "a"}')), done=False)
    assert [type(e) for e in decoder.feed(head)] == [MessageStart, Ping, BlockStart, BlockDelta, BlockDelta]
    events = decoder.feed(wire(chunk(call(1, "call_b", "Bash", '{"command": "ls"}')), done=False))
    assert events == [
        BlockStop(0),
        BlockStart(1, ToolUse("call_b", "Bash", {})),
        BlockDelta(1, "input_json", '{"command": "ls"}'),
    ]


STREAMS = {"reasoning_and_text": REASONING_AND_TEXT, "interleaved_tools": INTERLEAVED_TOOLS}


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_every_single_split_point_gives_identical_events(name):
    """Cuts mid-line, mid-UTF-8 character (é, 日本) and between data lines."""
    stream = STREAMS[name]
    expected = normalised(decode(stream))
    for offset in range(1, len(stream)):
        assert normalised(decode(stream, [offset])) == expected, offset


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_byte_by_byte_and_random_chunks_give_identical_events(name):
    stream = STREAMS[name]
    expected = normalised(decode(stream))
    assert normalised(decode(stream, list(range(1, len(stream))))) == expected
    rng = random.Random(7)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(stream)), rng.randint(1, 40)))
        assert normalised(decode(stream, cuts)) == expected


def test_crlf_line_endings_split_between_cr_and_lf():
    stream = wire(chunk({"content": "é"}), chunk({}, "stop"), newline=b"\r\n")
    expected = normalised(decode(wire(chunk({"content": "é"}), chunk({}, "stop"))))
    for offset in [i + 1 for i, byte in enumerate(stream) if byte == ord("\r")]:
        assert normalised(decode(stream, [offset])) == expected


def test_keep_alive_comments_and_empty_deltas_are_ignored_P6():
    chunks = (chunk({"content": ""}), chunk({"content": "hi"}), chunk({"content": None}, "stop"))
    stream = b": keep-alive\n\n" + wire(*chunks)
    events = decode(stream)
    assert_grammatical(events)
    assert blocks(events) == [("Text", None, None, "hi")]


def test_truncated_stream_is_an_error_not_a_clean_end():
    events = decode(wire(chunk({"content": "half an ans"}), done=False))
    assert isinstance(events[-1], StreamError)
    assert not any(isinstance(e, (MessageDelta, MessageStop)) for e in events)
    assert events[-1].error.kind == "api_error" and "ended early" in events[-1].error.message


def test_eof_after_finish_reason_without_done_ends_cleanly():
    events = decode(wire(chunk({"content": "done"}), chunk({}, "length"), done=False))
    assert_grammatical(events)
    assert events[-2].stop_reason == "max_tokens"


def test_error_object_mid_stream_becomes_stream_error():
    error = {"error": {"message": "Rate limit reached", "type": "rate_limit_error", "code": "rate_limit_exceeded"}}
    events = decode(wire(chunk({"content": "par"}), error))
    assert isinstance(events[-1], StreamError)
    assert events[-1].error.kind == "rate_limit" and events[-1].error.message == "Rate limit reached"
    assert not any(isinstance(e, MessageStop) for e in events)


def test_openrouter_numeric_error_code_maps_by_status():
    events = decode(wire({"error": {"message": "Provider overloaded", "code": 503}}))
    assert events == [StreamError(events[0].error)] and events[0].error.kind == "overloaded"


def test_tool_calls_with_stop_finish_reason_mean_tool_use_P1():
    events = decode(wire(chunk(call(0, "call_a", "Read", "{}")), chunk({}, "stop")))
    assert events[-2].stop_reason == "tool_use"


def test_name_arriving_after_the_first_fragment_is_waited_for():
    nameless = chunk(call(0, "call_a", None, ""))
    events = decode(wire(nameless, chunk(call(0, name="Bash", arguments='{"a": 1}')), chunk({}, "tool_calls")))
    assert_grammatical(events)
    assert blocks(events) == [("ToolUse", "call_a", "Bash", '{"a": 1}')]


def test_tool_without_arguments_gets_an_empty_object_and_a_missing_id_is_generated_P16():
    events = decode(wire(chunk(call(0, None, "Bash", "")), chunk({}, "tool_calls")))
    assert_grammatical(events)
    (_, tool_id, name, arguments), = blocks(events)
    assert tool_id.startswith("toolu_") and name == "Bash" and arguments == "{}"


def test_no_upstream_usage_keeps_the_estimate():
    events = decode(wire(chunk({"content": "hi"}), chunk({}, "stop")))
    assert events[-2].usage == Usage(input_tokens=estimate_input_tokens(REQ), output_tokens=0)


def test_usage_on_the_finish_chunk_is_accepted():
    usage = {"prompt_tokens": 10, "completion_tokens": 2, "prompt_cache_hit_tokens": 4}
    events = decode(wire(chunk({"content": "hi"}), chunk({}, "stop", usage=usage)))
    assert events[-2].usage == Usage(input_tokens=6, output_tokens=2, cache_read_tokens=4)


def test_refusal_delta_is_text_with_stop_reason_refusal():
    events = decode(wire(chunk({"refusal": "No."}), chunk({}, "stop")))
    assert blocks(events) == [("Text", None, None, "No.")] and events[-2].stop_reason == "refusal"


def test_empty_stream_with_done_is_a_clean_empty_message():
    events = decode(b"data: [DONE]\n\n")
    assert [type(e) for e in events] == [MessageStart, Ping, MessageDelta, MessageStop]


def test_nothing_at_all_is_an_error():
    assert [type(e) for e in decode(b"")] == [StreamError]
