"""formats.openai.StreamEncoder: canonical events -> chat.completion.chunk SSE (docs/translation.md §4.2, §5.11 B).

The strongest check runs the encoder's bytes through the official openai SDK (streaming parser and its
chunk accumulator) over an httpx MockTransport: no server, no network.
"""

import json

import httpx
import openai
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
    ToolUse,
    Usage,
)
from proxy.errors import UpstreamError
from proxy.formats.openai import StreamEncoder


def request(include_usage: bool) -> ChatRequest:
    return ChatRequest(
        model="my-alias", messages=[Message("user", [Text("hi")])], stream=True, include_usage=include_usage
    )


# What an Anthropic upstream says for: thinking, text, then two tool calls (block indices 2 and 3).
EVENTS = [
    MessageStart("msg_1", "claude-x", Usage(input_tokens=10, cache_read_tokens=100, cache_write_tokens=5)),
    Ping(),
    BlockStart(0, Thinking("", "")),
    BlockDelta(0, "thinking", "Let me see"),
    BlockDelta(0, "signature", "sig=="),
    BlockStop(0),
    BlockStart(1, Text("")),
    BlockDelta(1, "text", "Hello "),
    BlockDelta(1, "text", ""),
    BlockDelta(1, "text", "wörld 日本"),
    BlockStop(1),
    BlockStart(2, ToolUse("toolu_a", "get_weather", {})),
    BlockDelta(2, "input_json", ""),
    BlockDelta(2, "input_json", '{"city": '),
    BlockDelta(2, "input_json", '"Paris"}'),
    BlockStop(2),
    BlockStart(3, ToolUse("toolu_b", "get_time", {})),
    BlockDelta(3, "input_json", '{"tz": "CET"}'),
    BlockStop(3),
    MessageDelta("tool_use", None, Usage(10, 42, 100, 5)),
    MessageStop(),
]


def encode(events, include_usage=True) -> bytes:
    encoder = StreamEncoder(request(include_usage))
    return b"".join(encoder.encode(event) for event in events)


def data_lines(stream: bytes) -> list:
    assert stream.endswith(b"\n\n")
    frames = [f for f in stream.split(b"\n\n")[:-1] if not f.startswith(b":")]  # SSE comments: keep-alives
    assert all(frame.startswith(b"data: ") and b"\n" not in frame for frame in frames)
    return [frame[len(b"data: "):] for frame in frames]


def chunks(stream: bytes) -> list[dict]:
    return [json.loads(line) for line in data_lines(stream) if line != b"[DONE]"]


def test_every_chunk_shares_id_created_and_model_and_role_comes_first():
    parsed = chunks(encode(EVENTS))
    assert len({(c["id"], c["created"], c["model"], c["object"]) for c in parsed}) == 1
    assert parsed[0]["id"].startswith("chatcmpl-") and parsed[0]["model"] == "my-alias"
    assert parsed[0]["object"] == "chat.completion.chunk"
    assert parsed[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}


def test_a_ping_is_an_sse_comment_that_clients_skip():
    encoder = StreamEncoder(ChatRequest(model="m", messages=[]))
    assert encoder.encode(Ping()) == b": ping\n\n"


def test_usage_chunk_and_null_usage_only_when_asked():
    with_usage = chunks(encode(EVENTS, include_usage=True))
    assert all(c["usage"] is None for c in with_usage[:-1])
    assert with_usage[-1]["choices"] == [] and with_usage[-1]["usage"] == {
        "prompt_tokens": 115,
        "completion_tokens": 42,
        "total_tokens": 157,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 5},
    }
    without = chunks(encode(EVENTS, include_usage=False))
    assert all("usage" not in c and c["choices"] for c in without)


def test_done_comes_last():
    assert data_lines(encode(EVENTS))[-1] == b"[DONE]"
    assert data_lines(encode(EVENTS, include_usage=False))[-1] == b"[DONE]"


def test_tool_call_index_is_the_ordinal_among_tool_calls_not_the_block_index_P23():
    deltas = [c["choices"][0]["delta"] for c in chunks(encode(EVENTS)) if c["choices"]]
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    function = {"name": "get_weather", "arguments": ""}
    assert calls[0] == {"index": 0, "id": "toolu_a", "type": "function", "function": function}
    assert [c["index"] for c in calls] == [0, 0, 0, 1, 1]
    assert all(c["function"]["arguments"] for c in calls if "id" not in c)  # empty fragments skipped


def test_thinking_is_reasoning_content_and_signatures_vanish():
    deltas = [c["choices"][0]["delta"] for c in chunks(encode(EVENTS)) if c["choices"]]
    assert {"reasoning_content": "Let me see"} in deltas
    assert not any(b"sig==" in line for line in data_lines(encode(EVENTS)))


def test_finish_reason_is_tool_calls_when_tools_were_called_P1():
    events = EVENTS[:-2] + [MessageDelta("end_turn", None, Usage(output_tokens=3)), MessageStop()]
    finish = [c["choices"][0]["finish_reason"] for c in chunks(encode(events)) if c["choices"]]
    assert finish[-1] == "tool_calls" and set(finish[:-1]) == {None}


def test_error_chunk_ends_the_stream_without_done():
    failure = StreamError(UpstreamError("Overloaded", kind="overloaded"))
    stream = encode(EVENTS[:8] + [failure, MessageStop()])
    lines = data_lines(stream)
    assert b"[DONE]" not in lines
    error = {"message": "Overloaded", "type": "server_error", "param": None, "code": None}
    assert json.loads(lines[-1]) == {"error": error}


# --- through the official SDK -------------------------------------------------------------------------------


def sdk_client(stream: bytes) -> openai.OpenAI:
    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=stream)

    http_client = httpx.Client(transport=httpx.MockTransport(handler))
    return openai.OpenAI(api_key="sk-test", base_url="http://gw.test/v1", http_client=http_client)


@pytest.mark.parametrize("include_usage", [True, False])
def test_openai_sdk_accumulates_the_stream(include_usage):
    client = sdk_client(encode(EVENTS, include_usage))
    kwargs = {"stream_options": {"include_usage": True}} if include_usage else {}
    messages = [{"role": "user", "content": "hi"}]
    with client.chat.completions.stream(model="my-alias", messages=messages, **kwargs) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Hello wörld 日本"
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == [
        ("toolu_a", "get_weather", {"city": "Paris"}),
        ("toolu_b", "get_time", {"tz": "CET"}),
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.model == "my-alias"
    assert (final.usage.prompt_tokens if include_usage else final.usage) == (115 if include_usage else None)


def test_openai_sdk_raises_on_the_error_chunk():
    failure = StreamError(UpstreamError("upstream stream ended early", kind="api_error"))
    client = sdk_client(encode(EVENTS[:8] + [failure]))
    stream = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
    received = []
    with pytest.raises(openai.APIError, match="ended early"):
        for chunk in stream:
            received.append(chunk)
    assert received and received[0].choices[0].delta.role == "assistant"
