"""formats.openai render_response / parse_response / usage (docs/translation.md §4.1, §5.6, §5.7, §5.10)."""

import pytest

from proxy.formats import thinking_seal
from proxy.canonical import ChatRequest, ChatResponse, Message, Text, Thinking, Tool, ToolUse, Usage
from proxy.formats.openai import parse_response, render_response, usage_from_response
from proxy.formats.openai.tool_names import shorten

REQ = ChatRequest(model="client-model", messages=[Message(role="user", content=[Text("hi")])])


def completion(message: dict, finish_reason="stop", usage=None) -> dict:
    body = {
        "id": "chatcmpl-upstream",
        "object": "chat.completion",
        "created": 1,
        "model": "remote-model",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def tool_call(call_id, name, arguments) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


# --- §5.6 both directions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "finish_reason, stop_reason",
    [("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"), ("function_call", "tool_use"),
     ("content_filter", "refusal"), (None, "end_turn"), ("something_new", "end_turn")],
)
def test_finish_reason_to_stop_reason(finish_reason, stop_reason):
    assert parse_response(completion({"content": "x"}, finish_reason), REQ).stop_reason == stop_reason


@pytest.mark.parametrize(
    "stop_reason, finish_reason",
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("pause_turn", "stop"), ("max_tokens", "length"),
     ("model_context_window_exceeded", "length"), ("tool_use", "tool_calls"), ("refusal", "content_filter")],
)
def test_stop_reason_to_finish_reason(stop_reason, finish_reason):
    resp = ChatResponse(id="msg_1", model="m", content=[Text("x")], stop_reason=stop_reason)
    assert render_response(resp, REQ)["choices"][0]["finish_reason"] == finish_reason


def test_tool_calls_with_finish_reason_stop_still_mean_tool_use_P1():
    body = completion({"content": None, "tool_calls": [tool_call("call_1", "f", '{"a":1}')]}, "stop")
    resp = parse_response(body, REQ)
    assert resp.stop_reason == "tool_use"
    assert resp.content == [ToolUse(id="call_1", name="f", input={"a": 1})]


def test_rendered_tool_calls_mean_finish_reason_tool_calls_P1():
    resp = ChatResponse(id="msg_1", model="m", content=[ToolUse("toolu_1", "f", {})], stop_reason="end_turn")
    assert render_response(resp, REQ)["choices"][0]["finish_reason"] == "tool_calls"


# --- parse_response -----------------------------------------------------------------------------------------


def test_reasoning_content_becomes_a_thinking_block_first():
    body = completion({"content": "answer", "reasoning_content": "let me think"})
    resp = parse_response(body, REQ)
    assert resp.content == [Thinking("let me think", signature=thinking_seal.mint("let me think")), Text("answer")]
    assert resp.content[0].signature.startswith("gh-think-1.")  # minted here, never empty (formats/thinking_seal)
    assert resp.id.startswith("msg_") and resp.model == "client-model"


def test_openrouter_reasoning_field_is_thinking_too():
    block = parse_response(completion({"content": "a", "reasoning": "r"}), REQ).content[0]
    assert block.thinking == "r" and thinking_seal.verifies("r", block.signature)


def test_deepseek_cache_hit_tokens_are_cache_reads_P21():
    usage = {"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050,
             "prompt_cache_hit_tokens": 800, "prompt_cache_miss_tokens": 200}
    assert parse_response(completion({"content": "x"}, usage=usage), REQ).usage == Usage(
        input_tokens=200, output_tokens=50, cache_read_tokens=800
    )


def test_openai_usage_details_P21():
    usage = {"prompt_tokens": 1000, "completion_tokens": 300, "total_tokens": 1300,
             "prompt_tokens_details": {"cached_tokens": 600, "cache_write_tokens": 100},
             "completion_tokens_details": {"reasoning_tokens": 200}}
    assert usage_from_response({"usage": usage}) == Usage(
        input_tokens=300, output_tokens=300, cache_read_tokens=600, cache_write_tokens=100, reasoning_tokens=200
    )
    assert usage_from_response({}) == Usage()


def test_refusal_becomes_text_and_stop_reason_refusal():
    resp = parse_response(completion({"content": None, "refusal": "I can't help with that."}), REQ)
    assert resp.content == [Text("I can't help with that.")]
    assert resp.stop_reason == "refusal"


def test_tool_call_arguments_bad_json_or_non_object_P16():
    calls = [tool_call("functions.Read:0", "Read", "{oops"), tool_call(None, "Bash", "[1]")]
    resp = parse_response(completion({"content": "", "tool_calls": calls}, "tool_calls"), REQ)
    first, second = resp.content
    assert first.input == {} and first.id.startswith("functions_Read_0_")
    assert second.input == {"value": [1]} and second.id.startswith("toolu_")


def test_shortened_tool_names_are_restored_P15():
    long_name = "mcp__some_server__" + "y" * 60
    req = ChatRequest(model="m", messages=REQ.messages, tools=[Tool(long_name, {"type": "object"})])
    body = completion({"tool_calls": [tool_call("call_1", shorten(long_name), "{}")]}, "tool_calls")
    assert parse_response(body, req).content[0].name == long_name


def test_legacy_function_call_gets_a_generated_id():
    body = completion({"content": None, "function_call": {"name": "f", "arguments": '{"q":1}'}}, "function_call")
    (call,) = parse_response(body, REQ).content
    assert call.id.startswith("toolu_") and (call.name, call.input) == ("f", {"q": 1})


# --- render_response ----------------------------------------------------------------------------------------


def test_render_response_shape_and_usage_P21():
    resp = ChatResponse(
        id="msg_1",
        model="claude-x",
        content=[Thinking("hmm", "sig"), Text("Hello "), Text("there"), ToolUse("toolu_1", "get", {"city": "Paris"})],
        stop_reason="tool_use",
        usage=Usage(input_tokens=10, output_tokens=20, cache_read_tokens=100, cache_write_tokens=5, reasoning_tokens=7),
    )
    body = render_response(resp, REQ)
    assert body["id"].startswith("chatcmpl-") and body["object"] == "chat.completion"
    assert body["model"] == "client-model" and isinstance(body["created"], int)
    assert body["system_fingerprint"] is None
    assert body["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello there",
                "refusal": None,
                "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "get", "arguments": '{"city":"Paris"}'}}
                ],
                "reasoning_content": "hmm",
            },
            "finish_reason": "tool_calls",
            "logprobs": None,
        }
    ]
    assert body["usage"] == {
        "prompt_tokens": 115,
        "completion_tokens": 20,
        "total_tokens": 135,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 5},
        "completion_tokens_details": {"reasoning_tokens": 7},
    }


def test_tool_only_answer_has_null_content_and_no_reasoning_key_P6():
    resp = ChatResponse(id="msg_1", model="m", content=[ToolUse("toolu_1", "f", {})], stop_reason="tool_use")
    message = render_response(resp, REQ)["choices"][0]["message"]
    assert message["content"] is None and "reasoning_content" not in message
    assert "completion_tokens_details" not in render_response(resp, REQ)["usage"]


def test_openai_sdk_accepts_the_rendered_completion():
    from openai.types.chat import ChatCompletion

    resp = ChatResponse(id="msg_1", model="m", content=[Text("hi"), ToolUse("toolu_1", "f", {"a": [1]})])
    parsed = ChatCompletion.model_validate(render_response(resp, REQ))
    assert parsed.choices[0].message.tool_calls[0].function.arguments == '{"a":[1]}'
    assert parsed.usage.prompt_tokens_details.cached_tokens == 0
