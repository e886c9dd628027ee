"""ChatRequest -> Anthropic upstream body (docs/translation.md §5.3, §5.4, P-rules), and same-format pass-through."""

import json
from pathlib import Path

import pytest

from proxy.canonical import (
    ChatRequest,
    Image,
    Message,
    RedactedThinking,
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
from proxy.formats import anthropic

TARGET = TargetOptions(remote_model="claude-remote", default_max_tokens=8192, max_output_tokens=64000)
EPHEMERAL = {"type": "ephemeral"}


def user(*blocks) -> Message:
    return Message("user", [Text(b) if isinstance(b, str) else b for b in blocks])


def assistant(*blocks) -> Message:
    return Message("assistant", [Text(b) if isinstance(b, str) else b for b in blocks])


def system(text: str) -> Message:
    return Message("system", [Text(text)])


def render(*messages, target=TARGET, **fields) -> dict:
    return anthropic.render_request(ChatRequest(model="gpt-ish", messages=list(messages), **fields), target)


def texts(turn: dict) -> list[str]:
    return [b.get("text") for b in turn["content"]]


# --- shape --------------------------------------------------------------------------------------------------


def test_minimal_request_uses_remote_model_and_never_sends_stream_false():
    body = render(user("hi"), max_tokens=50)
    assert body == {
        "model": "claude-remote",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }


def test_stream_true_is_sent_only_when_streaming():
    assert render(user("hi"), stream=True)["stream"] is True


def test_all_system_content_is_hoisted_in_order_with_cache_control_P2():
    body = render(
        system("first"),
        user("q1"),
        Message("system", [Text("second", cache_control=EPHEMERAL)]),
        assistant("a1"),
        user("q2"),
        system=[Text("top")],
    )
    assert body["system"] == [
        {"type": "text", "text": "top"},
        {"type": "text", "text": "first"},
        {"type": "text", "text": "second", "cache_control": EPHEMERAL},
    ]
    assert [t["role"] for t in body["messages"]] == ["user", "assistant", "user"]


def test_consecutive_user_and_tool_messages_merge_into_one_turn_P7():
    call = assistant(ToolUse("call_1", "f", {}), ToolUse("call_2", "g", {}))
    body = render(user("go"), call, user(ToolResult("call_1", [Text("r1")])), user(ToolResult("call_2", [Text("r2")])),
                  user("and now?"))
    assert [t["role"] for t in body["messages"]] == ["user", "assistant", "user"]
    assert [b["type"] for b in body["messages"][2]["content"]] == ["tool_result", "tool_result", "text"]


def test_tool_results_come_first_in_the_user_turn_P3():
    body = render(
        user("go"),
        assistant(ToolUse("call_1", "f", {"x": 1})),
        user("<system-reminder>keep going</system-reminder>", ToolResult("call_1", [Text("done")])),
    )
    last = body["messages"][2]["content"]
    assert [b["type"] for b in last] == ["tool_result", "text"]
    assert last[0] == {"type": "tool_result", "tool_use_id": "call_1", "content": [{"type": "text", "text": "done"}]}


def test_empty_text_is_dropped_and_an_empty_user_turn_gets_placeholder_P6():
    body = render(user("  "), assistant("ok", ""), user(""))
    assert [texts(t) for t in body["messages"]] == [["(empty)"], ["ok"], ["(empty)"]]


def test_empty_assistant_turn_disappears_and_neighbouring_user_turns_merge():
    body = render(user("a"), assistant(""), user("b"))
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]


def test_first_assistant_turn_gets_a_dot_user_turn_before_it():
    body = render(assistant("I greet"), user("hi"))
    assert body["messages"][0] == {"role": "user", "content": [{"type": "text", "text": "."}]}
    assert body["messages"][1]["role"] == "assistant"


def test_trailing_whitespace_of_final_assistant_prefill_is_stripped():
    body = render(user("list"), assistant("Here:\n  "))
    assert body["messages"][-1] == {"role": "assistant", "content": [{"type": "text", "text": "Here:"}]}


def test_only_system_messages_still_send_one_user_turn():
    body = render(system("hello"))
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "(empty)"}]}]


def test_missing_tool_result_gets_placeholder_and_orphan_result_is_dropped_P4():
    body = render(
        user("go"),
        assistant(ToolUse("call_1", "f", {}), ToolUse("call_2", "g", {})),
        user(ToolResult("call_2", [Text("two")]), ToolResult("call_9", [Text("orphan")]), "next"),
    )
    results = [b for b in body["messages"][2]["content"] if b["type"] == "tool_result"]
    pairs = [(r["tool_use_id"], r["content"][0]["text"]) for r in results]
    assert pairs == [("call_1", "(no result)"), ("call_2", "two")]


def test_invalid_tool_ids_are_sanitized_the_same_in_calls_and_results_P16():
    body = render(user("go"), assistant(ToolUse("functions.Bash:0", "Bash", {})), user(ToolResult("functions.Bash:0")))
    call_id = body["messages"][1]["content"][0]["id"]
    assert call_id.startswith("functions_Bash_0_")
    assert body["messages"][2]["content"][0] == {"type": "tool_result", "tool_use_id": call_id}


def test_images_render_as_base64_and_url_sources_P8():
    body = render(user(Image(media_type="image/png", data="iVBOR"), Image(url="https://x/y.png")))
    assert body["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
    ]


# --- generation controls ------------------------------------------------------------------------------------


def test_missing_max_tokens_uses_target_default_P9():
    assert render(user("hi"))["max_tokens"] == 8192


def test_max_tokens_is_clamped_to_target_cap_P10():
    small = TargetOptions("claude-remote", default_max_tokens=4096, max_output_tokens=8192)
    assert render(user("hi"), max_tokens=32000, target=small)["max_tokens"] == 8192
    big_default = TargetOptions("claude-remote", default_max_tokens=100_000, max_output_tokens=8192)
    assert render(user("hi"), target=big_default)["max_tokens"] == 8192


@pytest.mark.parametrize("given, sent", [(1.5, 1.0), (-0.2, 0.0), (0.7, 0.7), (2, 1.0)])
def test_temperature_is_clamped_to_zero_one_P11(given, sent):
    assert render(user("hi"), temperature=given)["temperature"] == sent


def test_top_p_is_dropped_when_temperature_is_set_P12():
    body = render(user("hi"), temperature=0.5, top_p=0.9, top_k=5)
    assert body["temperature"] == 0.5 and "top_p" not in body and body["top_k"] == 5
    assert render(user("hi"), top_p=0.9)["top_p"] == 0.9


def test_whitespace_only_stop_sequences_are_dropped():
    assert render(user("hi"), stop=["\n", " ", "END"])["stop_sequences"] == ["END"]
    assert "stop_sequences" not in render(user("hi"), stop=["  "])


def test_tools_and_tool_choice_variants():
    tools = [Tool("f", {"type": "object", "properties": {}}, "does f", strict=True), Tool("g", {})]
    wire = [
        {"name": "f", "description": "does f", "input_schema": {"type": "object", "properties": {}}, "strict": True},
        {"name": "g", "input_schema": {"type": "object", "properties": {}}},
    ]
    cases = [
        (None, None),
        (ToolChoice("auto"), {"type": "auto"}),
        (ToolChoice("auto", disable_parallel=True), {"type": "auto", "disable_parallel_tool_use": True}),
        (ToolChoice("any"), {"type": "any"}),
        (
            ToolChoice("tool", name="f", disable_parallel=True),
            {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
        ),
        (ToolChoice("none", disable_parallel=True), {"type": "none"}),
    ]
    for choice, expected in cases:
        body = render(user("hi"), tools=tools, tool_choice=choice)
        assert body["tools"] == wire
        assert body.get("tool_choice") == expected


def test_tool_choice_without_tools_is_not_sent():
    assert "tool_choice" not in render(user("hi"), tool_choice=ToolChoice("auto", disable_parallel=True))


def test_user_becomes_metadata_user_id():
    assert render(user("hi"), user="alice")["metadata"] == {"user_id": "alice"}


# --- thinking -----------------------------------------------------------------------------------------------


def test_enabled_thinking_raises_max_tokens_above_budget_and_drops_temperature_and_top_k_P18():
    body = render(user("hi"), max_tokens=1000, temperature=0.3, top_k=3, top_p=0.5,
                  thinking=ThinkingConfig("enabled", budget_tokens=2000))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert body["max_tokens"] == 3000
    assert not {"temperature", "top_k", "top_p"} & body.keys()


def test_thinking_budget_is_at_least_1024_P18():
    body = render(user("hi"), max_tokens=5000, thinking=ThinkingConfig("enabled", budget_tokens=100))
    assert body["thinking"]["budget_tokens"] == 1024


def test_thinking_budget_shrinks_under_the_cap_or_thinking_is_dropped_P18():
    capped = TargetOptions("claude-remote", max_output_tokens=3000)
    body = render(user("hi"), max_tokens=2000, thinking=ThinkingConfig("enabled", budget_tokens=4000), target=capped)
    assert body["max_tokens"] == 3000 and body["thinking"]["budget_tokens"] == 2999
    tiny = TargetOptions("claude-remote", max_output_tokens=1000)
    assert "thinking" not in render(user("hi"), thinking=ThinkingConfig("enabled", budget_tokens=2048), target=tiny)


def test_enabled_thinking_without_budget_uses_the_effort_table():
    body = render(user("hi"), max_tokens=10000, thinking=ThinkingConfig("enabled", effort="medium"))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}


def test_adaptive_thinking_sends_effort_in_output_config():
    body = render(user("hi"), thinking=ThinkingConfig("adaptive", effort="high"))
    assert body["thinking"] == {"type": "adaptive"} and body["output_config"] == {"effort": "high"}
    assert "output_config" not in render(user("hi"), thinking=ThinkingConfig("adaptive"))


@pytest.mark.parametrize("config", [ThinkingConfig("disabled"), ThinkingConfig("adaptive", effort="minimal"),
                                    ThinkingConfig("enabled", 2048, effort="none")])
def test_thinking_off_sends_no_thinking(config):
    assert "thinking" not in render(user("hi"), thinking=config)


@pytest.mark.parametrize("choice", [ToolChoice("any"), ToolChoice("tool", name="f")])
def test_forced_tool_choice_is_downgraded_to_auto_under_thinking_P18(choice):
    body = render(user("hi"), tools=[Tool("f", {"type": "object"})], tool_choice=choice,
                  thinking=ThinkingConfig("adaptive"))
    assert body["tool_choice"] == {"type": "auto"}


def test_unsigned_thinking_blocks_are_never_sent_P20():
    body = render(user("q"), assistant(Thinking("mine", ""), Thinking("real", "sig"), "answer"), user("more"),
                  thinking=ThinkingConfig("adaptive"))
    assert body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "real", "signature": "sig"}, {"type": "text", "text": "answer"}
    ]


def test_thinking_is_disabled_when_last_tool_turn_has_no_signed_thinking_P20():
    body = render(
        user("q"),
        assistant(Thinking("synthesized", ""), ToolUse("call_1", "f", {})),
        user(ToolResult("call_1", [Text("r")])),
        thinking=ThinkingConfig("enabled", budget_tokens=2048), temperature=0.2,
    )
    assert "thinking" not in body
    assert body["temperature"] == 0.2
    assert [b["type"] for b in body["messages"][1]["content"]] == ["tool_use"]


def test_thinking_stays_on_when_last_tool_turn_is_signed_and_thinking_comes_first():
    body = render(
        user("q"),
        assistant("let me check", ToolUse("call_1", "f", {})),
        assistant(RedactedThinking("opaque")),
        user(ToolResult("call_1", [Text("r")])),
        thinking=ThinkingConfig("adaptive"),
    )
    assert body["thinking"] == {"type": "adaptive"}
    assert [b["type"] for b in body["messages"][1]["content"]] == ["redacted_thinking", "text", "tool_use"]


def test_thinking_blocks_are_stripped_when_thinking_is_off():
    body = render(user("q"), assistant(Thinking("t", "sig"), "a"), user("more"))
    assert body["messages"][1]["content"] == [{"type": "text", "text": "a"}]


# --- structured output --------------------------------------------------------------------------------------


def test_json_schema_forces_the_json_response_tool_and_turns_thinking_off():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    body = render(user("count"), response_format=ResponseFormat("json_schema", schema=schema),
                  thinking=ThinkingConfig("adaptive", effort="high"), tools=[Tool("f", {"type": "object"})])
    assert body["tools"][-1] == {
        "name": "json_response",
        "description": "Respond with a JSON object matching this schema.",
        "input_schema": schema,
    }
    assert body["tool_choice"] == {"type": "tool", "name": "json_response"}
    assert "thinking" not in body and "output_config" not in body


def test_json_object_appends_a_system_instruction():
    body = render(system("be terse"), user("x"), response_format=ResponseFormat("json_object"))
    assert body["system"][-1] == {"type": "text", "text": "Respond with a single valid JSON object and nothing else."}


# --- caching ------------------------------------------------------------------------------------------------


def test_at_most_four_cache_breakpoints_keeping_the_last_ones_P14():
    body = render(
        user(Text("u1", cache_control=EPHEMERAL)),
        assistant(ToolUse("call_1", "f", {}, cache_control=EPHEMERAL)),
        user(ToolResult("call_1", [Text("inner", cache_control=EPHEMERAL)], cache_control=EPHEMERAL),
             Text("u2", cache_control=EPHEMERAL)),
        system=[Text("s", cache_control=EPHEMERAL)],
        tools=[Tool("f", {"type": "object"}, cache_control=EPHEMERAL)],
    )
    assert "cache_control" not in body["tools"][0]
    assert "cache_control" not in body["system"][0]
    assert "cache_control" not in body["messages"][0]["content"][0]
    assert body["messages"][1]["content"][0]["cache_control"] == EPHEMERAL
    result, text = body["messages"][2]["content"]
    assert result["content"][0]["cache_control"] == result["cache_control"] == text["cache_control"] == EPHEMERAL


def test_four_or_fewer_breakpoints_are_untouched():
    body = render(user(Text("u", cache_control=EPHEMERAL)), system=[Text("s", cache_control=EPHEMERAL)])
    assert body["system"][0]["cache_control"] == body["messages"][0]["content"][0]["cache_control"] == EPHEMERAL


# --- pass-through -------------------------------------------------------------------------------------------


def test_passthrough_swaps_only_the_model_and_keeps_key_order():
    fixture = Path(__file__).resolve().parent.parent / "fixtures" / "claude-code" / "messages-tool-result-turn.json"
    capture = json.loads(fixture.read_text())
    body = capture["body"]
    forwarded = anthropic.passthrough_request(body, TARGET)
    assert list(forwarded) == list(body)
    assert forwarded["model"] == "claude-remote" and body["model"] != "claude-remote"
    assert {k: v for k, v in forwarded.items() if k != "model"} == {k: v for k, v in body.items() if k != "model"}
    original = json.dumps(body).replace(json.dumps(body["model"]), json.dumps("claude-remote"), 1)
    assert json.dumps(forwarded) == original  # billing block, signatures, cache_control byte-identical
