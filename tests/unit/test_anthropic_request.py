"""Anthropic caller requests -> ChatRequest (docs/translation.md §1, §5.1, §8)."""

import copy
import json
from pathlib import Path

import pytest

from proxy.canonical import (
    Document,
    Image,
    Message,
    RedactedThinking,
    ResponseFormat,
    Text,
    Thinking,
    ThinkingConfig,
    Tool,
    ToolChoice,
    ToolResult,
    ToolUse,
)
from proxy.errors import InvalidRequest
from proxy.formats import anthropic

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "claude-code"
CAPTURES = sorted(p for p in FIXTURES.glob("*.json") if json.loads(p.read_text())["body"] is not None)


def minimal(**fields) -> dict:
    return {"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], **fields}


def fixture_body(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())["body"]


def invalid(body: dict, parse=anthropic.parse_request) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        parse(body)
    return info.value


# --- captured Claude Code traffic ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
def test_every_captured_claude_code_body_parses(path):
    capture = json.loads(path.read_text())
    parse = anthropic.parse_count_tokens_request if "count_tokens" in capture["path"] else anthropic.parse_request
    request = parse(capture["body"])
    assert request.model == capture["body"]["model"]
    assert request.messages


def test_captures_cover_tool_turns_and_mid_conversation_system_messages():
    bodies = [json.loads(p.read_text())["body"] for p in CAPTURES]
    roles = {m["role"] for b in bodies for m in b["messages"]}
    lists = [m["content"] for b in bodies for m in b["messages"] if isinstance(m["content"], list)]
    blocks = {blk["type"] for content in lists for blk in content}
    assert {"user", "assistant", "system"} <= roles
    assert {"text", "thinking", "tool_use", "tool_result"} <= blocks


def test_claude_code_billing_block_is_dropped_from_system_P24():
    body = fixture_body("messages-first-turn.json")
    assert body["system"][0]["text"].startswith("x-anthropic-billing-header:")
    request = anthropic.parse_request(body)
    assert len(request.system) == len(body["system"]) - 1
    assert not any(t.text.startswith("x-anthropic-billing-header:") for t in request.system)
    assert request.system[0].cache_control == {"type": "ephemeral"}


def test_claude_code_system_role_message_is_kept_in_place():
    body = fixture_body("messages-tool-result-turn.json")
    request = anthropic.parse_request(body)
    assert [m.role for m in request.messages] == ["user", "system", "assistant", "user"]
    assert request.messages[1] == Message("system", [Text(body["messages"][1]["content"])])


def test_claude_code_tool_turn_keeps_signed_thinking_tool_use_and_string_tool_result():
    request = anthropic.parse_request(fixture_body("messages-tool-result-turn.json"))
    thinking, tool_use = request.messages[2].content
    assert isinstance(thinking, Thinking) and thinking.signature.startswith("fakesig_")
    assert isinstance(tool_use, ToolUse) and tool_use.name == "Read"
    (result,) = request.messages[3].content
    assert result == ToolResult(
        tool_use.id, [Text("1\tcapture-marker-7731\n2\t")], cache_control={"type": "ephemeral"}
    )


def test_claude_code_effort_metadata_and_dropped_beta_fields():
    body = fixture_body("messages-first-turn.json")
    request = anthropic.parse_request(body)
    assert request.thinking == ThinkingConfig("adaptive", effort="high")
    assert request.user == body["metadata"]["user_id"]
    assert request.stream is True and request.max_tokens == 64000
    assert all(isinstance(t, Tool) for t in request.tools) and len(request.tools) == len(body["tools"])


def test_effort_without_thinking_becomes_adaptive_thinking_with_that_effort():
    request = anthropic.parse_request(fixture_body("messages-custom-model-subagent.json"))
    assert request.thinking == ThinkingConfig("adaptive", effort="high")


def test_parsing_does_not_modify_the_body():
    body = fixture_body("messages-tool-result-turn.json")
    before = copy.deepcopy(body)
    anthropic.parse_request(body)
    assert body == before


# --- validation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, param, message",
    [
        ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens", "max_tokens: Field required"),
        (minimal(max_tokens="10"), "max_tokens", "max_tokens: Input should be a valid integer"),
        (minimal(max_tokens=True), "max_tokens", "max_tokens: Input should be a valid integer"),
        (minimal(max_tokens=-1), "max_tokens", None),
        ({"max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}, "model", "model: Field required"),
        (minimal(model=""), "model", None),
        (minimal(messages=[]), "messages", "messages: at least one message is required"),
        (minimal(messages="hi"), "messages", None),
        (minimal(messages=[{"role": "tool", "content": "x"}]), "messages.0.role", None),
        (minimal(messages=[{"role": "user"}]), "messages.0.content", "messages.0.content: Field required"),
        (
            minimal(messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                              {"role": "user", "content": [{"type": "audio"}]}]),
            "messages.2.content.0.type",
            None,
        ),
        (minimal(messages=[{"role": "user", "content": [{"type": "text"}]}]), "messages.0.content.0.text", None),
        (
            minimal(messages=[{"role": "assistant", "content": [
                {"type": "tool_use", "id": "t", "name": "n", "input": []}]}]),
            "messages.0.content.0.input",
            None,
        ),
        (
            minimal(messages=[{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "x"}}]}]),
            "messages.0.content.0.source.media_type",
            None,
        ),
        (minimal(temperature="hot"), "temperature", None),
        (minimal(tools=[{"name": "t"}]), "tools.0.input_schema", "tools.0.input_schema: Field required"),
        (minimal(tool_choice={"type": "required"}), "tool_choice.type", None),
        (minimal(tool_choice={"type": "tool"}), "tool_choice.name", None),
        (minimal(thinking={"type": "enabled"}), "thinking.budget_tokens", None),
        (minimal(thinking={"type": "on"}), "thinking.type", None),
        (minimal(stop_sequences=["ok", 3]), "stop_sequences.1", None),
        (minimal(system=[{"type": "image"}]), "system.0.type", None),
        (minimal(output_config={"format": {"type": "xml"}}), "output_config.format.type", None),
    ],
)
def test_invalid_fields_are_named_in_param_and_message(body, param, message):
    error = invalid(body)
    assert error.param == param
    assert error.kind == "invalid_request" and error.status == 400
    assert error.message.startswith(f"{param}: ")
    if message:
        assert error.message == message


def test_max_tokens_zero_is_accepted_cache_warming():
    assert anthropic.parse_request(minimal(max_tokens=0)).max_tokens == 0


def test_count_tokens_does_not_require_max_tokens():
    body = fixture_body("count-tokens.json")
    request = anthropic.parse_count_tokens_request(body)
    assert request.max_tokens is None
    assert invalid(body).param == "max_tokens"


def test_non_object_body_is_rejected():
    with pytest.raises(InvalidRequest):
        anthropic.parse_request([])


# --- content blocks -----------------------------------------------------------------------------------------


def test_every_block_type_maps_to_its_canonical_block():
    content = [
        {"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}, "citations": []},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
        {"type": "image", "source": {"type": "url", "url": "https://x/cat.jpg"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"},
         "title": "spec", "context": "ctx"},
    ]
    assistant = [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a"}},
    ]
    results = [
        {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True, "content": [
            {"type": "text", "text": "boom"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "R0lG"}},
        ]},
        {"type": "tool_result", "tool_use_id": "toolu_2"},
        {"type": "tool_result", "tool_use_id": "toolu_3", "content": ""},
    ]
    request = anthropic.parse_request(minimal(messages=[
        {"role": "user", "content": content},
        {"role": "assistant", "content": assistant},
        {"role": "user", "content": results},
    ]))
    assert request.messages[0].content == [
        Text("look", cache_control={"type": "ephemeral"}),
        Image(media_type="image/png", data="iVBOR"),
        Image(url="https://x/cat.jpg"),
        Document({"type": "base64", "media_type": "application/pdf", "data": "JVBER"}, title="spec", context="ctx"),
    ]
    assert request.messages[1].content == [
        Thinking("hmm", "sig"), RedactedThinking("opaque"), ToolUse("toolu_1", "Read", {"path": "a"})
    ]
    assert request.messages[2].content == [
        ToolResult("toolu_1", [Text("boom"), Image(media_type="image/gif", data="R0lG")], is_error=True),
        ToolResult("toolu_2", []),
        ToolResult("toolu_3", []),
    ]


def test_server_tool_blocks_are_dropped_and_a_message_left_empty_disappears_P17():
    request = anthropic.parse_request(minimal(messages=[
        {"role": "user", "content": "search"},
        {"role": "assistant", "content": [
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        ]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "found"},
            {"type": "code_execution_tool_result", "tool_use_id": "x", "content": {}},
        ]},
    ]))
    assert request.messages == [Message("user", [Text("search")]), Message("assistant", [Text("found")])]


def test_system_role_message_with_text_blocks():
    request = anthropic.parse_request(minimal(messages=[
        {"role": "user", "content": "a"},
        {"role": "system", "content": [{"type": "text", "text": "be brief"}]},
    ]))
    assert request.messages[1] == Message("system", [Text("be brief")])


def test_mid_conversation_system_block_becomes_a_system_message_at_its_position():
    request = anthropic.parse_request(minimal(messages=[{"role": "user", "content": [
        {"type": "text", "text": "a"},
        {"type": "mid_conv_system", "content": [{"type": "text", "text": "rule"}]},
        {"type": "text", "text": "b"},
    ]}]))
    assert request.messages == [
        Message("user", [Text("a")]), Message("system", [Text("rule")]), Message("user", [Text("b")])
    ]


def test_system_string_and_empty_system():
    assert anthropic.parse_request(minimal(system="be nice")).system == [Text("be nice")]
    assert anthropic.parse_request(minimal(system="")).system == []


# --- tools and generation controls --------------------------------------------------------------------------


def test_custom_tools_are_kept_and_anthropic_defined_tools_dropped_P17():
    tools = [
        {"name": "get_weather", "description": "w", "input_schema": {"type": "object"}, "strict": True,
         "cache_control": {"type": "ephemeral"}},
        {"type": "custom", "name": "lookup", "input_schema": {"type": "object"}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
        {"type": "bash_20250124", "name": "bash"},
        {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
    ]
    request = anthropic.parse_request(minimal(tools=tools))
    assert request.tools == [
        Tool("get_weather", {"type": "object"}, "w", strict=True, cache_control={"type": "ephemeral"}),
        Tool("lookup", {"type": "object"}),
    ]


@pytest.mark.parametrize(
    "wire, canonical",
    [
        ({"type": "auto"}, ToolChoice("auto")),
        ({"type": "any", "disable_parallel_tool_use": True}, ToolChoice("any", disable_parallel=True)),
        ({"type": "tool", "name": "Read"}, ToolChoice("tool", name="Read")),
        ({"type": "none"}, ToolChoice("none")),
    ],
)
def test_tool_choice_variants(wire, canonical):
    assert anthropic.parse_request(minimal(tool_choice=wire)).tool_choice == canonical


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, ThinkingConfig("enabled", 2048)),
        ({"thinking": {"type": "adaptive"}}, ThinkingConfig("adaptive")),
        ({"thinking": {"type": "disabled"}}, ThinkingConfig("disabled")),
        (
            {"thinking": {"type": "adaptive"}, "output_config": {"effort": "max"}},
            ThinkingConfig("adaptive", effort="max"),
        ),
        ({"output_config": {"effort": "low"}}, ThinkingConfig("adaptive", effort="low")),
        ({}, None),
    ],
)
def test_thinking_and_effort(fields, expected):
    assert anthropic.parse_request(minimal(**fields)).thinking == expected


def test_output_config_format_and_legacy_output_format_become_json_schema_response_format():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    new = anthropic.parse_request(minimal(output_config={"format": {"type": "json_schema", "schema": schema}}))
    old = anthropic.parse_request(minimal(output_format={"type": "json_schema", "schema": schema}))
    assert new.response_format == old.response_format == ResponseFormat("json_schema", schema=schema)


def test_sampling_fields_and_ignored_anthropic_only_fields():
    request = anthropic.parse_request(minimal(
        temperature=0, top_p=0.9, top_k=40, stop_sequences=["END"], stream=False,
        metadata={"user_id": "u1"}, context_management={"edits": []}, cache_control={"type": "ephemeral"},
        service_tier="auto", container="c", inference_geo="us", mcp_servers=[],
    ))
    assert (request.temperature, request.top_p, request.top_k) == (0, 0.9, 40)
    assert request.stop == ["END"] and request.user == "u1" and request.stream is False
