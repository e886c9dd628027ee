"""formats.openai.parse_request: an OpenAI caller's body -> ChatRequest (docs/translation.md §5.3, §5.4)."""

import json
from pathlib import Path

import pytest

from proxy.canonical import Document, Image, Text, ToolResult, ToolUse
from proxy.errors import InvalidRequest
from proxy.formats.openai import parse_request

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "openai-clients"


def fixture_body(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())["body"]


def body(*messages, **fields) -> dict:
    return {"model": "gpt-4o-mini", "messages": list(messages) or [{"role": "user", "content": "hi"}], **fields}


def rejected_param(request_body: dict) -> str:
    with pytest.raises(InvalidRequest) as raised:
        parse_request(request_body)
    assert raised.value.status == 400
    return raised.value.param


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.json")))
def test_every_recorded_client_body_parses(name):
    req = parse_request(fixture_body(name))
    assert req.model == "gpt-4o-mini"
    assert req.messages


def test_aider_trailing_system_message_stays_in_place():
    req = parse_request(fixture_body("aider-chat.json"))
    assert [m.role for m in req.messages][0] == "system"
    assert req.messages[-1].role == "system"
    assert req.system == []
    assert req.temperature == 0
    assert req.stream and not req.include_usage


def test_llm_stream_asks_for_usage():
    req = parse_request(fixture_body("llm-chat-stream.json"))
    assert req.stream and req.include_usage


def test_llm_tool_result_turn_becomes_tool_use_then_tool_result():
    req = parse_request(fixture_body("llm-tool-result.json"))
    user, assistant, tool = req.messages
    assert assistant.content == [ToolUse(id="call_fake39fb96223d2934baf740b175", name="llm_version", input={})]
    assert tool.role == "user"
    assert tool.content == [ToolResult(tool_use_id="call_fake39fb96223d2934baf740b175", content=[Text("0.36")])]
    assert req.tools[0].input_schema == {"properties": {}, "type": "object"}


def test_max_tokens_fixture_and_max_completion_tokens_wins():
    assert parse_request(fixture_body("llm-system-max-tokens.json")).max_tokens == 3
    assert parse_request(body(max_tokens=10, max_completion_tokens=20)).max_tokens == 20


def test_missing_model_and_empty_messages_are_400():
    assert rejected_param({"messages": [{"role": "user", "content": "x"}]}) == "model"
    assert rejected_param({"model": "m", "messages": []}) == "messages"
    assert rejected_param(body({"role": "wizard", "content": "x"})) == "messages[0].role"


def test_malformed_field_types_are_400_not_crashes():
    assert rejected_param(body(tools={"type": "function"})) == "tools"
    assert rejected_param(body(max_tokens="10")) == "max_tokens"
    assert rejected_param(body(temperature="hot")) == "temperature"
    assert rejected_param(body(stop=[1])) == "stop"
    assert rejected_param(body(tools=[{"type": "function", "function": {"name": "f"}}], tool_choice="sometimes")) == (
        "tool_choice"
    )
    assert rejected_param(body({"role": "user", "content": [{"type": "file", "file": "x"}]})) == (
        "messages[0].content[0].file"
    )
    assert not parse_request(body(stream=True, stream_options="yes")).include_usage


def test_n_above_one_is_400_P13():
    assert rejected_param(body(n=2)) == "n"
    assert parse_request(body(n=1)).model == "gpt-4o-mini"


def test_logprobs_are_400_P13():
    assert rejected_param(body(logprobs=True)) == "logprobs"
    assert rejected_param(body(top_logprobs=3)) == "logprobs"
    parse_request(body(logprobs=False))


def test_audio_is_400_P13():
    assert rejected_param(body(modalities=["text", "audio"])) == "modalities"
    assert rejected_param(body(audio={"voice": "alloy", "format": "mp3"})) == "audio"
    audio_part = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    message = {"role": "user", "content": [{"type": "text", "text": "listen"}, audio_part]}
    assert rejected_param(body(message)) == "messages[0].content[1]"


def test_file_id_is_400():
    part = {"type": "file", "file": {"file_id": "file-abc"}}
    assert rejected_param(body({"role": "user", "content": [part]})) == "messages[0].content[0].file"


def test_pdf_file_data_becomes_a_document():
    part = {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0x", "filename": "a.pdf"}}
    req = parse_request(body({"role": "user", "content": [part]}))
    assert req.messages[0].content == [
        Document(source={"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"})
    ]


def test_images_data_url_and_remote_P8():
    parts = [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    req = parse_request(body({"role": "user", "content": parts}))
    assert req.messages[0].content == [
        Image(media_type="image/png", data="iVBORw0K"),
        Image(url="https://example.com/cat.jpg"),
    ]


def test_unsupported_image_type_is_400_naming_the_part_P8():
    part = {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}
    message = {"role": "user", "content": [{"type": "text", "text": "see"}, part]}
    assert rejected_param(body({"role": "user", "content": "a"}, message)) == "messages[1].content[1].image_url"


def test_invalid_tool_call_arguments_are_400_naming_the_param():
    calls = [
        {"id": "call_1", "type": "function", "function": {"name": "a", "arguments": "{}"}},
        {"id": "call_2", "type": "function", "function": {"name": "b", "arguments": "{not json"}},
    ]
    messages = [{"role": "user", "content": "go"}, {"role": "assistant", "content": None, "tool_calls": calls}]
    assert rejected_param(body(*messages)) == "messages[1].tool_calls[1].function.arguments"


def test_non_object_arguments_are_wrapped_and_bad_ids_sanitized_P16():
    calls = [{"id": "functions.Bash:0", "type": "function", "function": {"name": "Bash", "arguments": "[1, 2]"}}]
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "running", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "functions.Bash:0", "content": [{"type": "text", "text": "ok"}]},
    ]
    req = parse_request(body(*messages))
    text, tool_use = req.messages[1].content
    assert text == Text("running")
    assert tool_use.input == {"value": [1, 2]}
    assert tool_use.id.startswith("functions_Bash_0_")
    assert req.messages[2].content[0].tool_use_id == tool_use.id  # the same deterministic repair


def test_reasoning_content_in_history_is_dropped_P20():
    messages = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a", "reasoning_content": "hmm"},
        {"role": "user", "content": "q2"},
    ]
    assert parse_request(body(*messages)).messages[1].content == [Text("a")]


def test_refusal_parts_become_text():
    content = [{"type": "refusal", "refusal": "I can't."}]
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": content}]
    assert parse_request(body(*messages)).messages[1].content == [Text("I can't.")]


def test_legacy_function_calling_gets_deterministic_ids_that_match():
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "function_call": {"name": "weather", "arguments": '{"city":"Oslo"}'}},
        {"role": "function", "name": "weather", "content": "cold"},
    ]
    request_body = body(
        *messages,
        functions=[{"name": "weather", "parameters": {"type": "object"}}],
        function_call={"name": "weather"},
    )
    first, second = parse_request(request_body), parse_request(request_body)
    call = first.messages[1].content[0]
    assert call == ToolUse(id="call_fn_1", name="weather", input={"city": "Oslo"})
    assert first.messages[2].content == [ToolResult(tool_use_id="call_fn_1", content=[Text("cold")])]
    assert second.messages[1].content[0].id == call.id
    assert first.tools[0].name == "weather"
    assert (first.tool_choice.type, first.tool_choice.name) == ("tool", "weather")


def test_tools_and_tool_choice_mapping():
    tools = [{"type": "function", "function": {"name": "f", "description": "d", "strict": True}}]
    req = parse_request(body(tools=tools, tool_choice="required"))
    assert req.tools[0].input_schema == {"type": "object", "properties": {}}
    assert (req.tools[0].description, req.tools[0].strict) == ("d", True)
    assert req.tool_choice.type == "any"
    assert parse_request(body(tools=tools, tool_choice="none")).tool_choice.type == "none"
    named = parse_request(body(tools=tools, tool_choice={"type": "function", "function": {"name": "f"}}))
    assert (named.tool_choice.type, named.tool_choice.name) == ("tool", "f")


def test_parallel_tool_calls_false_without_tool_choice_means_auto_without_parallel():
    tools = [{"type": "function", "function": {"name": "f"}}]
    choice = parse_request(body(tools=tools, parallel_tool_calls=False)).tool_choice
    assert (choice.type, choice.disable_parallel) == ("auto", True)


def test_custom_tools_are_400():
    tools = [{"type": "custom", "custom": {"name": "grammar"}}]
    assert rejected_param(body(tools=tools)) == "tools[0]"


@pytest.mark.parametrize(
    "effort, budget",
    [("low", 1024), ("medium", 2048), ("high", 4096), ("xhigh", 8192), ("max", 16384)],
)
def test_reasoning_effort_becomes_a_thinking_budget(effort, budget):
    thinking = parse_request(body(reasoning_effort=effort)).thinking
    assert (thinking.type, thinking.budget_tokens, thinking.effort) == ("enabled", budget, effort)


def test_reasoning_effort_none_and_minimal_mean_no_thinking():
    assert parse_request(body(reasoning_effort="none")).thinking is None
    assert parse_request(body(reasoning_effort="minimal")).thinking is None


def test_response_format_mapping():
    assert parse_request(body(response_format={"type": "text"})).response_format is None
    assert parse_request(body(response_format={"type": "json_object"})).response_format.type == "json_object"
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}
    parsed = parse_request(body(response_format=fmt)).response_format
    assert (parsed.type, parsed.name, parsed.schema, parsed.strict) == ("json_schema", "answer", schema, True)


def test_stop_user_and_dropped_fields():
    req = parse_request(
        body(stop="END", safety_identifier="u-1", seed=1, logit_bias={"1": 2}, store=True, metadata={"a": "b"},
             prediction={"type": "content", "content": "x"}, verbosity="low", service_tier="auto",
             prompt_cache_key="k", frequency_penalty=0.5, presence_penalty=0.5)
    )
    assert req.stop == ["END"]
    assert req.user == "u-1"
    assert parse_request(body(stop=["a", "b"])).stop == ["a", "b"]


def test_developer_message_is_a_system_message_in_place():
    messages = [{"role": "user", "content": "a"}, {"role": "developer", "content": [{"type": "text", "text": "rules"}]}]
    assert parse_request(body(*messages)).messages[1].content == [Text("rules")]
