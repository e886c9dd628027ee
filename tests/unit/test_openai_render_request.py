"""formats.openai.render_request: ChatRequest -> an OpenAI-compatible upstream's body (docs/translation.md §5.1,
§5.2)."""

import json
from pathlib import Path

import orjson
import pytest

from accounts.presets import PRESETS
from proxy.canonical import (
    ChatRequest,
    Document,
    Image,
    Message,
    ResponseFormat,
    TargetOptions,
    Text,
    Thinking,
    ThinkingConfig,
    Tool,
    ToolChoice,
    ToolResult,
    ToolUse,
)
from proxy.formats.openai import render_request, tool_name_map
from proxy.formats.openai.tool_names import shorten

CLAUDE_CODE = Path(__file__).resolve().parent.parent / "fixtures" / "claude-code"
ANTHROPIC_ONLY_KEYS = {
    "thinking", "output_config", "context_management", "metadata", "cache_control", "top_k", "system",
    "stop_sequences", "anthropic_beta", "betas", "signature", "redacted_thinking", "tool_use", "tool_result",
}


def target(model="gpt-4o", preset="openai_compatible", **options) -> TargetOptions:
    return TargetOptions(remote_model=model, capabilities=PRESETS[preset].capabilities, **options)


def request(*messages, **fields) -> ChatRequest:
    return ChatRequest(model="claude-sonnet-4-5", messages=list(messages), **fields)


def user(*blocks) -> Message:
    return Message(role="user", content=list(blocks))


def assistant(*blocks) -> Message:
    return Message(role="assistant", content=list(blocks))


def _block(raw: dict):
    """What the Anthropic parser produces for a content block (built by hand until it exists)."""
    kind = raw["type"]
    if kind == "text":
        return Text(raw["text"], cache_control=raw.get("cache_control"))
    if kind == "thinking":
        return Thinking(raw["thinking"], raw.get("signature", ""))
    if kind == "tool_use":
        return ToolUse(raw["id"], raw["name"], raw["input"], cache_control=raw.get("cache_control"))
    if kind == "tool_result":
        content = raw.get("content") or []
        blocks = [Text(content)] if isinstance(content, str) else [_block(b) for b in content]
        return ToolResult(raw["tool_use_id"], blocks, raw.get("is_error", False), raw.get("cache_control"))
    raise AssertionError(kind)


def claude_code_request(name: str) -> ChatRequest:
    anthropic = json.loads((CLAUDE_CODE / name).read_text())["body"]
    messages = []
    for message in anthropic["messages"]:
        content = message["content"]
        blocks = [Text(content)] if isinstance(content, str) else [_block(b) for b in content]
        messages.append(Message(role=message["role"], content=blocks))
    thinking = anthropic.get("thinking")
    return ChatRequest(
        model=anthropic["model"],
        messages=messages,
        system=[Text(b["text"], cache_control=b.get("cache_control")) for b in anthropic["system"]],
        max_tokens=anthropic["max_tokens"],
        stream=anthropic.get("stream", False),
        tools=[Tool(t["name"], t["input_schema"], t.get("description")) for t in anthropic["tools"]],
        thinking=thinking and ThinkingConfig(
            type=thinking["type"], effort=(anthropic.get("output_config") or {}).get("effort")
        ),
        user=(anthropic.get("metadata") or {}).get("user_id"),
    )


def all_keys(value) -> set[str]:
    """Every key at any depth, except inside tool schemas (a tool may well have a "metadata" property)."""
    if isinstance(value, dict):
        return set(value) | {k for key, v in value.items() if key != "parameters" for k in all_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in all_keys(v)}
    return set()


@pytest.mark.parametrize(
    "name", ["messages-first-turn.json", "messages-tool-result-turn.json", "messages-continue-second-turn.json",
             "messages-agent-tool-result-turn.json", "messages-subagent-haiku.json"],
)
def test_claude_code_body_renders_without_anthropic_only_keys(name):
    rendered = render_request(claude_code_request(name), target("deepseek-chat", max_output_tokens=8192))
    assert not all_keys(rendered) & ANTHROPIC_ONLY_KEYS
    assert b"x-anthropic-billing-header" not in orjson.dumps(rendered)  # P-24
    assert rendered["max_tokens"] == 8192  # P-10: Claude Code asks for 32000+
    assert rendered["stream_options"] == {"include_usage": True}
    assert "reasoning_effort" not in rendered  # the generic preset asks for no reasoning
    assert rendered["messages"][0]["role"] == "system" and isinstance(rendered["messages"][0]["content"], str)


def test_claude_code_tool_result_turn_keeps_the_mid_conversation_system_message():
    rendered = render_request(claude_code_request("messages-tool-result-turn.json"), target())
    roles = [m["role"] for m in rendered["messages"]]
    assert roles == ["system", "user", "system", "assistant", "tool"]
    call = rendered["messages"][3]["tool_calls"][0]
    assert rendered["messages"][4]["tool_call_id"] == call["id"]
    assert rendered["messages"][3]["content"] is None
    assert json.loads(call["function"]["arguments"])["file_path"].endswith("notes.txt")


def test_adaptive_thinking_becomes_reasoning_effort_for_the_presets_reasoning_models_only():
    req = claude_code_request("messages-first-turn.json")
    assert render_request(req, target("o3", "openai"))["reasoning_effort"] == "high"
    assert "reasoning_effort" not in render_request(req, target("gpt-4o", "openai"))
    assert "reasoning_effort" not in render_request(req, target("o3"))  # generic preset: no reasoning parameter


@pytest.mark.parametrize(
    "budget, effort", [(512, "minimal"), (1024, "low"), (2047, "low"), (2048, "medium"), (4096, "high")]
)
def test_thinking_budget_maps_to_reasoning_effort(budget, effort):
    req = request(user(Text("hi")), thinking=ThinkingConfig(type="enabled", budget_tokens=budget))
    assert render_request(req, target("o4-mini", "openai"))["reasoning_effort"] == effort


def test_reasoning_models_get_max_completion_tokens_and_no_temperature_P10():
    req = request(user(Text("hi")), max_tokens=32000, temperature=0.5, top_p=0.9, stop=["x"])
    rendered = render_request(req, target("o3", "openai", max_output_tokens=100000))
    assert rendered["max_completion_tokens"] == 32000
    assert not {"max_tokens", "temperature", "top_p", "stop"} & set(rendered)
    plain = render_request(req, target("openai/gpt-4o-mini", "openrouter"))
    assert (plain["max_tokens"], plain["temperature"], plain["top_p"], plain["stop"]) == (32000, 0.5, 0.9, ["x"])
    assert "max_completion_tokens" in render_request(req, target("openai/gpt-5-mini", "openai"))


def test_stop_keeps_first_four_and_top_k_is_dropped():
    rendered = render_request(request(user(Text("hi")), stop=list("abcdef"), top_k=5), target())
    assert rendered["stop"] == ["a", "b", "c", "d"]
    assert "top_k" not in rendered


def test_tool_results_become_one_tool_message_each_first_P3():
    req = request(
        user(Text("go")),
        assistant(Text("calling"), ToolUse("t1", "a", {}), ToolUse("t2", "b", {"x": 1})),
        user(Text("and also this"), ToolResult("t2", [Text("two")]), ToolResult("t1", [Text("one"), Text("more")])),
    )
    messages = render_request(req, target())["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": "calling",
        "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "a", "arguments": "{}"}},
            {"id": "t2", "type": "function", "function": {"name": "b", "arguments": '{"x":1}'}},
        ],
    }
    assert messages[2:] == [
        {"role": "tool", "tool_call_id": "t2", "content": "two"},
        {"role": "tool", "tool_call_id": "t1", "content": "one\nmore"},
        {"role": "user", "content": "and also this"},
    ]


def test_error_and_empty_tool_results():
    req = request(
        user(Text("go")),
        assistant(ToolUse("t1", "a", {}), ToolUse("t2", "b", {})),
        user(ToolResult("t1", [Text("boom")], is_error=True), ToolResult("t2", [])),
    )
    tool_messages = render_request(req, target())["messages"][2:]
    assert [m["content"] for m in tool_messages] == ["Error: boom", "(no output)"]


def test_missing_tool_results_get_placeholders_and_orphans_are_dropped_P4():
    req = request(
        user(Text("go")),
        assistant(ToolUse("t1", "a", {}), ToolUse("t2", "b", {})),
        user(ToolResult("t2", [Text("two")]), ToolResult("ghost", [Text("??")]), Text("stop, do something else")),
        assistant(Text("ok")),
        user(ToolResult("t1", [Text("late")]), Text("next")),
    )
    messages = render_request(req, target())["messages"]
    assert messages == [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": messages[1]["tool_calls"]},
        {"role": "tool", "tool_call_id": "t2", "content": "two"},
        {"role": "tool", "tool_call_id": "t1", "content": "(no result)"},
        {"role": "user", "content": "stop, do something else"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "next"},
    ]


def test_system_message_between_a_call_and_its_result_moves_after_the_result_P3():
    req = request(
        user(Text("go")),
        assistant(ToolUse("t1", "a", {})),
        Message(role="system", content=[Text("mid-conversation note")]),
        user(ToolResult("t1", [Text("done")])),
    )
    roles = [m["role"] for m in render_request(req, target())["messages"]]
    assert roles == ["user", "assistant", "tool", "system"]


def test_tool_result_images_move_to_the_following_user_message_P5():
    image = Image(media_type="image/png", data="iVBOR")
    req = request(
        user(Text("screenshot")),
        assistant(ToolUse("t1", "screenshot", {})),
        user(ToolResult("t1", [Text("here"), image]), Text("what do you see?")),
    )
    messages = render_request(req, target())["messages"]
    assert messages[2]["role"] == "tool" and messages[2]["content"].startswith("here\n[image")
    assert messages[3] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "what do you see?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
        ],
    }


def test_user_media_parts_P8():
    pdf = Document(source={"type": "base64", "media_type": "application/pdf", "data": "JVBER"})
    text_doc = Document(source={"type": "text", "media_type": "text/plain", "data": "notes"}, title="N")
    req = request(user(Text("read"), Image(url="https://x/y.png"), pdf, text_doc))
    assert render_request(req, target())["messages"][0]["content"] == [
        {"type": "text", "text": "read"},
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBER", "filename": "document.pdf"}},
        {"type": "text", "text": "N\n\nnotes"},
    ]


def test_same_role_neighbours_merge_but_tool_messages_never_do_P7():
    req = request(
        user(Text("a")), user(Text("b")), assistant(Text("c")), assistant(Thinking("t", "sig")), assistant(Text("d"))
    )
    assert render_request(req, target())["messages"] == [
        {"role": "user", "content": "a\n\nb"},
        {"role": "assistant", "content": "c\n\nd"},
    ]


def test_system_blocks_join_and_cache_control_is_dropped():
    req = request(
        user(Text("hi", cache_control={"type": "ephemeral"})),
        system=[Text("x-anthropic-billing-header: cc_version=1;"), Text("one", {"type": "ephemeral"}), Text("two")],
    )
    rendered = render_request(req, target())
    assert rendered["messages"] == [{"role": "system", "content": "one\n\ntwo"}, {"role": "user", "content": "hi"}]


MCP_NAME = "mcp__some_server__" + "x" * 60
DOTTED_NAME = "files.read"


def test_long_and_invalid_tool_names_are_shortened_and_map_back_P15():
    req = request(
        user(Text("go")),
        assistant(ToolUse("t1", MCP_NAME, {})),
        user(ToolResult("t1", [Text("ok")])),
        tools=[Tool(MCP_NAME, {"type": "object"}), Tool(DOTTED_NAME, {"type": "object"}), Tool("Bash", {})],
        tool_choice=ToolChoice(type="tool", name=DOTTED_NAME),
    )
    rendered = render_request(req, target())
    names = [t["function"]["name"] for t in rendered["tools"]]
    assert names[2] == "Bash"
    for short in names:
        assert len(short) <= 64 and short.replace("_", "").replace("-", "").isalnum()
    assert len(names[0]) == 64 and names[0].startswith("mcp__some_server__")
    assert rendered["messages"][1]["tool_calls"][0]["function"]["name"] == names[0]
    assert rendered["tool_choice"] == {"type": "function", "function": {"name": names[1]}}
    assert tool_name_map(req) == {names[0]: MCP_NAME, names[1]: DOTTED_NAME}
    assert shorten("files_read") != shorten(DOTTED_NAME)  # the hash keeps look-alikes apart


@pytest.mark.parametrize("choice, expected", [("auto", "auto"), ("any", "required"), ("none", "none")])
def test_tool_choice_mapping(choice, expected):
    req = request(user(Text("go")), tools=[Tool("f", {})], tool_choice=ToolChoice(type=choice, disable_parallel=True))
    rendered = render_request(req, target())
    assert (rendered["tool_choice"], rendered["parallel_tool_calls"]) == (expected, False)
    without_tools = render_request(request(user(Text("go")), tool_choice=ToolChoice(type=choice)), target())
    assert "tool_choice" not in without_tools and "parallel_tool_calls" not in without_tools


def test_tool_strict_and_description_pass():
    req = request(user(Text("go")), tools=[Tool("f", {"type": "object"}, "does f", strict=True)])
    assert render_request(req, target())["tools"] == [
        {
            "type": "function",
            "function": {"name": "f", "description": "does f", "parameters": {"type": "object"}, "strict": True},
        }
    ]


def test_response_format_mapping():
    schema = {"type": "object"}
    schema_only = ResponseFormat("json_schema", schema)
    as_schema = render_request(request(user(Text("go")), response_format=schema_only), target())
    assert as_schema["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    strict = ResponseFormat("json_schema", schema, name="answer", strict=True)
    assert render_request(request(user(Text("go")), response_format=strict), target())["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}
    }
    as_object = render_request(request(user(Text("go")), response_format=ResponseFormat("json_object")), target())
    assert as_object["response_format"] == {"type": "json_object"}


def test_non_streaming_request_has_no_stream_keys_and_passes_user():
    rendered = render_request(request(user(Text("go")), user="u-1"), target())
    assert "stream" not in rendered and "stream_options" not in rendered
    assert rendered["user"] == "u-1"
