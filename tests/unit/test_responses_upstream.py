"""formats.responses, upstream side: another format's request to a Responses upstream (render_request), its
answer back (parse_response) and its stream (StreamDecoder), checked against the openai SDK's request types."""

import copy
from itertools import count

import pytest
from openai.types.responses.response_create_params import (
    ResponseCreateParamsNonStreaming,
    ResponseCreateParamsStreaming,
)
from pydantic import TypeAdapter

from proxy.canonical import (
    BlockDelta,
    BlockStart,
    BlockStop,
    ChatRequest,
    Image,
    Message,
    MessageDelta,
    MessageStart,
    MessageStop,
    ResponseFormat,
    StreamError,
    TargetOptions,
    Text,
    Thinking,
    ThinkingConfig,
    Tool,
    ToolChoice,
    ToolResult,
    ToolUse,
    Usage,
)
from accounts.presets import PRESETS
from proxy.errors import UpstreamError
from proxy.formats import anthropic, responses
from proxy.formats.openai.tool_names import shorten
from proxy.formats.responses import StreamDecoder, StreamEncoder, ids, parse_response, render_request

LONG_NAME = "mcp__github_enterprise_server__search_pull_requests_by_label_and_author"  # > 64: P-15
OPENAI = PRESETS["openai"].capabilities  # a Responses upstream's default preset
GPT = TargetOptions(remote_model="gpt-4.1", capabilities=OPENAI)
REASONER = TargetOptions(remote_model="gpt-5-codex", max_output_tokens=1000, capabilities=OPENAI)
ALLOWED_KEYS = ResponseCreateParamsNonStreaming.__required_keys__ | ResponseCreateParamsNonStreaming.__optional_keys__


@pytest.fixture(autouse=True)
def fixed_ids(monkeypatch):
    counter = count(1)
    monkeypatch.setattr(ids, "new_id", lambda prefix: f"{prefix}_{next(counter):04d}")
    monkeypatch.setattr(ids, "now", lambda: 1_700_000_000)


def valid(body: dict) -> dict:
    """The body as the openai SDK types it, with no key the API does not know."""
    params = ResponseCreateParamsStreaming if body.get("stream") else ResponseCreateParamsNonStreaming
    TypeAdapter(params).validate_python(body)
    assert set(body) <= ALLOWED_KEYS, set(body) - ALLOWED_KEYS
    return body


# A Claude Code turn, parsed by the Anthropic format: system, a tool round trip with an image, thinking.
CLAUDE_BODY = {
    "model": "claude-alias",
    "max_tokens": 32000,
    "system": [{"type": "text", "text": "You are Claude Code."}, {"type": "text", "text": "Be terse."}],
    "messages": [
        {"role": "user", "content": "look at the PR"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "I should search.", "signature": "sig"},
            {"type": "text", "text": "Searching."},
            {"type": "tool_use", "id": "toolu_01", "name": LONG_NAME, "input": {"label": "bug"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": "PR #7"},
            {"type": "text", "text": "and this screenshot"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        ]},
    ],
    "tools": [{"name": LONG_NAME, "description": "Search PRs.",
               "input_schema": {"type": "object", "properties": {"label": {"type": "string"}}}}],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    "thinking": {"type": "enabled", "budget_tokens": 5000},
    "temperature": 1,
    "stop_sequences": ["\n\nHuman:"],
    "stream": True,
}  # fmt: skip


def test_a_claude_code_turn_becomes_a_valid_responses_body():
    body = valid(render_request(anthropic.parse_request(CLAUDE_BODY), REASONER))
    short = shorten(LONG_NAME)
    assert body["model"] == "gpt-5-codex" and body["stream"] is True and body["store"] is False
    assert body["instructions"] == "You are Claude Code.\n\nBe terse."
    assert body["input"] == [
        {"role": "user", "content": [{"type": "input_text", "text": "look at the PR"}]},
        {"role": "assistant", "content": "Searching."},  # thinking has no way back
        {"type": "function_call", "call_id": "toolu_01", "name": short, "arguments": '{"label":"bug"}'},
        {"type": "function_call_output", "call_id": "toolu_01", "output": "PR #7"},  # results first (P-3)
        {"role": "user", "content": [{"type": "input_text", "text": "and this screenshot"},
                                     {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=",
                                      "detail": "auto"}]},
    ]  # fmt: skip
    assert body["tools"] == [{"type": "function", "name": short, "description": "Search PRs.",
                              "parameters": CLAUDE_BODY["tools"][0]["input_schema"], "strict": False}]  # fmt: skip
    assert body["tool_choice"] == "required" and body["parallel_tool_calls"] is False
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    assert body["max_output_tokens"] == 1000  # clamped (P-10)
    assert "temperature" not in body  # reasoning models reject it


def test_a_chat_model_keeps_sampling_and_gets_no_reasoning_R6():
    req = ChatRequest(model="m", messages=[Message("user", [Text("hi")])], temperature=0.2, top_p=0.5,
                      thinking=ThinkingConfig(type="enabled", budget_tokens=2048), stop=["x"], top_k=5)  # fmt: skip
    body = valid(render_request(req, GPT))
    assert (body["temperature"], body["top_p"]) == (0.2, 0.5)
    assert "reasoning" not in body and "stop" not in body and "top_k" not in body


def test_forced_tool_json_schema_user_and_system_messages_in_place():
    req = ChatRequest(
        model="m",
        messages=[Message("user", [Text("a")]), Message("system", [Text("mid-conversation rule")]),
                  Message("user", [ToolResult("c1", [Text("boom")], is_error=True)])],
        tools=[Tool("get_weather", {"type": "object"}, strict=True)],
        tool_choice=ToolChoice(type="tool", name="get_weather"),
        response_format=ResponseFormat("json_schema", schema={"type": "object"}, name="w", strict=True),
        user="u-1",
    )  # fmt: skip
    body = valid(render_request(req, GPT))
    assert body["input"][1] == {"role": "system", "content": "mid-conversation rule"}
    assert body["input"][2] == {"type": "function_call_output", "call_id": "c1", "output": "Error: boom"}
    assert body["tool_choice"] == {"type": "function", "name": "get_weather"} and body["tools"][0]["strict"] is True
    json_schema = {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True}
    assert body["text"] == {"format": json_schema}
    assert body["user"] == "u-1" and "instructions" not in body and "stream" not in body


def test_a_tool_result_with_an_image_keeps_its_parts():
    req = ChatRequest(model="m", messages=[Message("user", [
        ToolResult("c1", [Text("shot"), Image(url="https://x/a.png")])])])  # fmt: skip
    output = valid(render_request(req, GPT))["input"][0]["output"]
    assert output == [{"type": "input_text", "text": "shot"},
                      {"type": "input_image", "image_url": "https://x/a.png", "detail": "auto"}]  # fmt: skip


# --- parse_response ------------------------------------------------------------------------------------------

REQ = anthropic.parse_request(CLAUDE_BODY)
UPSTREAM_RESPONSE = {
    "id": "resp_up", "object": "response", "status": "completed", "model": "gpt-5-codex",
    "output": [
        {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "First."},
                                                        {"type": "summary_text", "text": "Second."}],
         "encrypted_content": "gAAAAAB-openai"},
        {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "Found it.", "annotations": []}]},
        {"id": "ws_1", "type": "web_search_call", "status": "completed"},
        {"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "call_9",
         "name": shorten(LONG_NAME), "arguments": '{"label": "bug"}'},
    ],
    "usage": {"input_tokens": 120, "input_tokens_details": {"cached_tokens": 100}, "output_tokens": 30,
              "output_tokens_details": {"reasoning_tokens": 12}, "total_tokens": 150},
}  # fmt: skip


def test_parse_response_reasoning_text_and_calls_with_the_names_restored():
    resp = parse_response(UPSTREAM_RESPONSE, REQ)
    assert resp.content == [
        Thinking("First.\n\nSecond.", signature=""),  # never a signature Anthropic would check (P-20)
        Text("Found it."),
        ToolUse("call_9", LONG_NAME, {"label": "bug"}),
    ]
    assert resp.stop_reason == "tool_use" and resp.model == "claude-alias" and resp.id.startswith("msg_")
    assert resp.usage == Usage(input_tokens=20, output_tokens=30, cache_read_tokens=100, reasoning_tokens=12)
    message = anthropic.render_response(resp, REQ)  # what Claude Code then sees
    assert [block["type"] for block in message["content"]] == ["thinking", "text", "tool_use"]


@pytest.mark.parametrize(
    "status, details, stop_reason",
    [("completed", None, "end_turn"), ("incomplete", {"reason": "max_output_tokens"}, "max_tokens"),
     ("incomplete", {"reason": "content_filter"}, "refusal")],
)  # fmt: skip
def test_parse_response_status_to_stop_reason(status, details, stop_reason):
    body = {"status": status, "incomplete_details": details,
            "output": [{"type": "message", "content": [{"type": "output_text", "text": "x"}]}]}  # fmt: skip
    assert parse_response(body, REQ).stop_reason == stop_reason


def test_a_refusal_part_is_text_with_stop_reason_refusal():
    body = {"status": "completed", "output": [{"type": "message", "content": [{"type": "refusal", "refusal": "No."}]}]}
    resp = parse_response(body, REQ)
    assert resp.content == [Text("No.")] and resp.stop_reason == "refusal"


# --- StreamDecoder -------------------------------------------------------------------------------------------

# The upstream's stream, produced by our own encoder (the same grammar OpenAI sends).
ANSWER = [
    MessageStart("m", "x", Usage(input_tokens=10)),
    BlockStart(0, Thinking("", "")),
    BlockDelta(0, "thinking", "Hmm."),
    BlockStop(0),
    BlockStart(1, Text("")),
    BlockDelta(1, "text", "Hello "),
    BlockDelta(1, "text", "wörld"),
    BlockStop(1),
    BlockStart(2, ToolUse("call_1", shorten(LONG_NAME), {})),
    BlockDelta(2, "input_json", '{"label":'),
    BlockDelta(2, "input_json", '"bug"}'),
    BlockStop(2),
    BlockStart(3, ToolUse("call_2", "no_args", {})),
    BlockStop(3),
    MessageDelta("tool_use", None, Usage(10, 20, 100, 0, reasoning_tokens=5)),
    MessageStop(),
]
UPSTREAM_REQ = responses.parse_request({"model": "m", "input": "hi", "tools": [
    {"type": "function", "name": shorten(LONG_NAME)}, {"type": "function", "name": "no_args"}]})  # fmt: skip


def upstream_stream(events) -> bytes:
    encoder = StreamEncoder(UPSTREAM_REQ)
    return b"".join(encoder.encode(event) for event in copy.deepcopy(events))


UPSTREAM_STREAM = upstream_stream(ANSWER)


def decode(chunks: list[bytes], req=REQ) -> list:
    decoder = StreamDecoder(req)
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.finish()


def test_the_stream_decodes_to_canonical_events_with_names_restored():
    events = decode([UPSTREAM_STREAM])
    start = events[0]
    assert isinstance(start, MessageStart) and start.model == "claude-alias" and start.usage.input_tokens > 0
    assert events[1:] == [
        BlockStart(0, Thinking("", "")),
        BlockDelta(0, "thinking", "Hmm."),
        BlockStop(0),
        BlockStart(1, Text("")),
        BlockDelta(1, "text", "Hello "),
        BlockDelta(1, "text", "wörld"),
        BlockStop(1),
        BlockStart(2, ToolUse("call_1", LONG_NAME, {})),
        BlockDelta(2, "input_json", '{"label":'),
        BlockDelta(2, "input_json", '"bug"}'),
        BlockStop(2),
        BlockStart(3, ToolUse("call_2", "no_args", {})),
        BlockDelta(3, "input_json", "{}"),
        BlockStop(3),
        MessageDelta("tool_use", None, Usage(10, 20, 100, 0, reasoning_tokens=5)),
        MessageStop(),
    ]


def test_decoder_gives_identical_events_for_a_split_at_every_byte_boundary():
    expected = decode([UPSTREAM_STREAM])[1:]
    for cut in range(1, len(UPSTREAM_STREAM)):
        assert decode([UPSTREAM_STREAM[:cut], UPSTREAM_STREAM[cut:]])[1:] == expected, f"split at byte {cut}"


def test_a_cut_stream_is_a_stream_error_never_a_clean_end_R2():
    cut = UPSTREAM_STREAM.index(b"event: response.completed")
    events = decode([UPSTREAM_STREAM[:cut]])
    assert isinstance(events[-1], StreamError) and not any(isinstance(e, MessageStop) for e in events)
    assert "ended before response.completed" in events[-1].error.message


def test_response_failed_and_error_events_become_stream_errors():
    stream = upstream_stream([*ANSWER[:6], StreamError(UpstreamError("Rate limited.", kind="rate_limit"))])
    events = decode([stream])
    errors = [event for event in events if isinstance(event, StreamError)]
    assert len(errors) == 1 and errors[0].error.kind == "rate_limit"  # the `error` event; nothing after it
    failed_only = stream[stream.index(b"event: response.failed"):]
    head = stream[: stream.index(b"event: error")]
    errors = [e for e in decode([head + failed_only]) if isinstance(e, StreamError)]
    assert len(errors) == 1 and errors[0].error.kind == "rate_limit"


def test_incomplete_upstream_answer_is_max_tokens():
    events = [MessageStart("m", "x", Usage()), BlockStart(0, Text("")), BlockDelta(0, "text", "cut"), BlockStop(0),
              MessageDelta("max_tokens", None, Usage(1, 16)), MessageStop()]  # fmt: skip
    decoded = decode([upstream_stream(events)])
    assert decoded[-2] == MessageDelta("max_tokens", None, Usage(1, 16, reasoning_tokens=0))
    assert decoded[-1] == MessageStop()
