"""Non-streaming Messages responses, both directions (docs/translation.md §2.1–2.3, §5.6–5.8, §5.10)."""

import json

import pytest
from anthropic.types import Message as SDKMessage

from proxy.canonical import (
    ChatRequest,
    ChatResponse,
    Message,
    RedactedThinking,
    ResponseFormat,
    Text,
    Thinking,
    ToolUse,
    Usage,
)
from proxy.formats import anthropic

REQUEST = ChatRequest(model="claude-sonnet-alias", messages=[Message("user", [Text("hi")])])
JSON_REQUEST = ChatRequest(
    model="gpt-client",
    messages=REQUEST.messages,
    response_format=ResponseFormat("json_schema", schema={"type": "object"}),
)


def response(*content, stop_reason="end_turn", **fields) -> ChatResponse:
    return ChatResponse(id="msg_abc", model="upstream-model", content=list(content), stop_reason=stop_reason, **fields)


# --- render_response ----------------------------------------------------------------------------------------


def test_rendered_message_has_the_full_anthropic_shape_and_echoes_the_caller_model():
    usage = Usage(input_tokens=10, output_tokens=20, cache_read_tokens=30, cache_write_tokens=40)
    body = anthropic.render_response(
        response(Thinking("hmm", "sig"), RedactedThinking("xx"), Text("hello"), stop_reason="max_tokens", usage=usage),
        REQUEST,
    )
    assert body == {
        "id": "msg_abc",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-alias",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "redacted_thinking", "data": "xx"},
            {"type": "text", "text": "hello"},
        ],
        "stop_reason": "max_tokens",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10, "cache_creation_input_tokens": 40, "cache_read_input_tokens": 30, "output_tokens": 20
        },
    }
    SDKMessage.model_validate(body)


def test_any_tool_use_forces_stop_reason_tool_use_P1():
    resp = response(Text("x"), ToolUse("call_1", "f", {"a": 1}), stop_reason="end_turn")
    body = anthropic.render_response(resp, REQUEST)
    assert body["stop_reason"] == "tool_use"
    assert body["content"][1] == {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}}
    SDKMessage.model_validate(body)


def test_non_anthropic_message_id_is_replaced_and_bad_tool_ids_sanitized_P16():
    tools = [ToolUse("functions.Bash:0", "Bash", {}), ToolUse("", "f", {})]
    resp = ChatResponse(id="chatcmpl-123", model="m", content=tools)
    body = anthropic.render_response(resp, REQUEST)
    assert body["id"].startswith("msg_") and len(body["id"]) == 28
    assert body["content"][0]["id"].startswith("functions_Bash_0_")
    assert body["content"][1]["id"].startswith("toolu_")


def test_stop_sequence_is_echoed():
    body = anthropic.render_response(response(Text("x"), stop_reason="stop_sequence", stop_sequence="END"), REQUEST)
    assert (body["stop_reason"], body["stop_sequence"]) == ("stop_sequence", "END")


# --- parse_response -----------------------------------------------------------------------------------------

UPSTREAM_BODY = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
        {"type": "thinking", "thinking": "plan", "signature": "EqQB"},
        {"type": "text", "text": "Checking.", "citations": None},
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {"type": "tool_use", "id": "toolu_01T", "name": "get_weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 472,
        "cache_creation_input_tokens": 5,
        "cache_read_input_tokens": 100,
        "output_tokens": 89,
        "output_tokens_details": {"thinking_tokens": 12},
    },
}


def test_parse_response_maps_blocks_and_drops_server_tool_blocks():
    resp = anthropic.parse_response(UPSTREAM_BODY, REQUEST)
    assert resp == ChatResponse(
        id="msg_01XFDUDYJgAACzvnptvVoYEL",
        model="claude-sonnet-4-5",
        content=[Thinking("plan", "EqQB"), Text("Checking."), ToolUse("toolu_01T", "get_weather", {"city": "Paris"})],
        stop_reason="tool_use",
        usage=Usage(
            input_tokens=472, output_tokens=89, cache_read_tokens=100, cache_write_tokens=5, reasoning_tokens=12
        ),
    )


def test_usage_from_response_keeps_cache_figures_apart_P21():
    usage = anthropic.usage_from_response(UPSTREAM_BODY)
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (472, 100, 5)
    assert usage.prompt_tokens == 577
    assert anthropic.usage_from_response({}) == Usage()


@pytest.mark.parametrize("stop", ["end_turn", "max_tokens", "stop_sequence", "pause_turn", "refusal",
                                  "model_context_window_exceeded"])
def test_every_stop_reason_survives_parsing(stop):
    assert anthropic.parse_response({**UPSTREAM_BODY, "content": [], "stop_reason": stop}, REQUEST).stop_reason == stop


def test_unknown_or_missing_stop_reason_becomes_end_turn():
    assert anthropic.parse_response({"content": [], "stop_reason": "brand_new"}, REQUEST).stop_reason == "end_turn"
    assert anthropic.parse_response({"content": []}, REQUEST).stop_reason == "end_turn"


def test_json_response_tool_becomes_text_and_end_turn_for_json_schema_requests():
    body = {
        **UPSTREAM_BODY,
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "json_response", "input": {"n": 3, "name": "café"}}],
        "stop_reason": "tool_use",
    }
    resp = anthropic.parse_response(body, JSON_REQUEST)
    assert resp.stop_reason == "end_turn"
    (text,) = resp.content
    assert isinstance(text, Text) and json.loads(text.text) == {"n": 3, "name": "café"}


def test_json_response_tool_is_left_alone_without_json_schema_response_format():
    body = {**UPSTREAM_BODY, "content": [{"type": "tool_use", "id": "t", "name": "json_response", "input": {}}]}
    resp = anthropic.parse_response(body, REQUEST)
    assert resp.content == [ToolUse("t", "json_response", {})] and resp.stop_reason == "tool_use"


def test_render_of_a_parsed_upstream_response_is_a_valid_sdk_message():
    body = anthropic.render_response(anthropic.parse_response(UPSTREAM_BODY, REQUEST), REQUEST)
    message = SDKMessage.model_validate(body)
    assert message.model == "claude-sonnet-alias" and message.stop_reason == "tool_use"
