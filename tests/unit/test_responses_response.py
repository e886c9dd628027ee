"""formats.responses render_response, usage and errors (docs/responses.md R-3, R-5, R-9, R-10), checked against the
official openai SDK's types: every rendered object must pass `Response.model_validate`."""

import json
from itertools import count

import httpx
import openai
import orjson
import pytest
from openai.types.responses import Response, ResponseErrorEvent

from proxy.canonical import ChatRequest, ChatResponse, Message, RedactedThinking, Text, Thinking, ToolUse, Usage
from proxy.errors import InvalidRequest, RateLimited, RawError, UpstreamError
from proxy.formats import responses
from proxy.formats.responses import ids, parse_request, reasoning, render_response, usage_from_response


@pytest.fixture(autouse=True)
def fixed_ids(monkeypatch):
    counter = count(1)
    monkeypatch.setattr(ids, "new_id", lambda prefix: f"{prefix}_{next(counter):04d}")
    monkeypatch.setattr(ids, "now", lambda: 1_700_000_000)


@pytest.fixture
def sealing():
    reasoning.configure(b"test gateway secret")
    yield
    reasoning.configure(None)


@pytest.fixture
def unsealed():
    """No sealing key, whatever start-up configured (proxy's AppConfig seals with the gateway secret)."""
    reasoning.configure(None)


TOOLS = [
    {"type": "function", "name": "get_weather", "description": "Weather now.", "strict": True,
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                    "additionalProperties": False}},
    {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark", "definition": "s: x"}},
    {"type": "web_search"},
]  # fmt: skip
REQ = parse_request({"model": "my-alias", "input": "hi", "tools": TOOLS, "instructions": "Be brief."})


def answer(*content, stop_reason="end_turn", usage=None) -> ChatResponse:
    return ChatResponse(id="msg_up", model="claude-x", content=list(content), stop_reason=stop_reason,
                        usage=usage or Usage(input_tokens=10, output_tokens=5))  # fmt: skip


def validated(obj: dict) -> Response:
    return Response.model_validate(obj, strict=False)


# --- shape ---------------------------------------------------------------------------------------------------


def test_plain_text_answer():
    rendered = render_response(answer(Text("Hello "), Text("world")), REQ)
    parsed = validated(rendered)
    assert parsed.output_text == "Hello world"
    assert rendered["id"] == "resp_0001" and rendered["object"] == "response"
    assert rendered["created_at"] == 1_700_000_000 and rendered["model"] == "my-alias"
    assert rendered["status"] == "completed" and rendered["incomplete_details"] is None and rendered["error"] is None
    assert rendered["output"] == [{
        "id": "msg_0002", "type": "message", "status": "completed", "role": "assistant",
        "content": [{"type": "output_text", "text": "Hello ", "annotations": [], "logprobs": []},
                    {"type": "output_text", "text": "world", "annotations": [], "logprobs": []}],
    }]  # fmt: skip


def test_tool_calls_function_and_custom_R3():
    rendered = render_response(answer(
        Text("Checking."),
        ToolUse("toolu_1", "get_weather", {"city": "Paris"}),
        ToolUse("toolu_2", "apply_patch", {"input": "*** Begin Patch\n*** End Patch\n"}),
        stop_reason="tool_use",
    ), REQ)  # fmt: skip
    validated(rendered)
    assert rendered["status"] == "completed"
    assert rendered["output"][1:] == [
        {"id": "fc_0003", "type": "function_call", "status": "completed", "arguments": '{"city":"Paris"}',
         "call_id": "toolu_1", "name": "get_weather"},
        {"id": "ctc_0004", "type": "custom_tool_call", "status": "completed", "call_id": "toolu_2",
         "name": "apply_patch", "input": "*** Begin Patch\n*** End Patch\n"},
    ]  # fmt: skip


def test_a_custom_tool_called_with_other_arguments_passes_them_on_as_text():
    rendered = render_response(answer(ToolUse("toolu_2", "apply_patch", {"patch": "x"})), REQ)
    assert rendered["output"][0]["input"] == '{"patch":"x"}'


def test_reasoning_items_carry_the_thinking_as_summary_R5(unsealed):
    rendered = render_response(answer(Thinking("Let me think.", "sig"), RedactedThinking("opaque"), Text("42")), REQ)
    validated(rendered)
    assert rendered["output"][:2] == [
        {"id": "rs_0002", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Let me think."}]},
        {"id": "rs_0003", "type": "reasoning", "summary": []},
    ]  # without a sealing key there is no encrypted_content


def test_sealed_reasoning_round_trips_through_the_next_request(sealing):
    thinking = Thinking("Let me think.", "EqQBCkYIBxgC==")
    rendered = render_response(answer(thinking, ToolUse("toolu_1", "get_weather", {"city": "Oslo"})), REQ)
    validated(rendered)
    item = rendered["output"][0]
    assert item["encrypted_content"].startswith("gh1.") and "Let me think" not in item["encrypted_content"]
    # the client replays the output items (Codex, store: false) and adds the tool's result
    replay = {"model": "my-alias", "input": ["hi", *rendered["output"],
              {"type": "function_call_output", "call_id": "toolu_1", "output": "sunny"}]}  # fmt: skip
    replay["input"][0] = {"role": "user", "content": "hi"}
    req = parse_request(replay)
    assert req.messages[1] == Message("assistant", [thinking, ToolUse("toolu_1", "get_weather", {"city": "Oslo"})])


def test_empty_text_blocks_do_not_make_items_P6():
    rendered = render_response(answer(Text(""), ToolUse("toolu_1", "get_weather", {}), Text("")), REQ)
    assert [item["type"] for item in rendered["output"]] == ["function_call"]
    assert rendered["output"][0]["arguments"] == "{}"


def test_text_blocks_split_by_a_tool_call_are_two_messages():
    rendered = render_response(answer(Text("a"), ToolUse("t", "get_weather", {}), Text("b")), REQ)
    assert [item["type"] for item in rendered["output"]] == ["message", "function_call", "message"]


# --- status (R-10) -------------------------------------------------------------------------------------------


def test_max_tokens_is_incomplete_and_marks_the_last_item():
    rendered = render_response(answer(Text("a"), ToolUse("t", "get_weather", {}), Text("cut sh"),
                                      stop_reason="max_tokens"), REQ)  # fmt: skip
    parsed = validated(rendered)
    assert parsed.status == "incomplete" and parsed.incomplete_details.reason == "max_output_tokens"
    assert [item["status"] for item in rendered["output"]] == ["completed", "completed", "incomplete"]


@pytest.mark.parametrize(
    "stop_reason, status, reason",
    [
        ("end_turn", "completed", None),
        ("tool_use", "completed", None),
        ("stop_sequence", "completed", None),
        ("pause_turn", "completed", None),
        ("max_tokens", "incomplete", "max_output_tokens"),
        ("model_context_window_exceeded", "incomplete", "max_output_tokens"),
        ("refusal", "incomplete", "content_filter"),
    ],
)
def test_stop_reason_to_status(stop_reason, status, reason):
    rendered = render_response(answer(Text("x"), stop_reason=stop_reason), REQ)
    validated(rendered)
    assert rendered["status"] == status
    assert rendered["incomplete_details"] == (reason and {"reason": reason})


# --- usage (R-9) ---------------------------------------------------------------------------------------------


def test_usage_counts_cache_inside_input_tokens_R9():
    usage = Usage(input_tokens=10, output_tokens=50, cache_read_tokens=100, cache_write_tokens=5, reasoning_tokens=30)
    rendered = render_response(answer(Text("x"), usage=usage), REQ)
    assert rendered["usage"] == {
        "input_tokens": 115,
        "input_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 5},
        "output_tokens": 50,
        "output_tokens_details": {"reasoning_tokens": 30},
        "total_tokens": 165,
    }
    assert validated(rendered).usage.input_tokens_details.cached_tokens == 100
    assert usage_from_response(rendered) == usage  # and back, for the pass-through ledger


def test_usage_without_reasoning_count_reports_zero():
    rendered = render_response(answer(Text("x"), usage=Usage(3, 4)), REQ)
    assert rendered["usage"]["output_tokens_details"] == {"reasoning_tokens": 0}
    assert usage_from_response({}) == Usage()


# --- echo ----------------------------------------------------------------------------------------------------


def test_request_parameters_are_echoed():
    req = parse_request({
        "model": "my-alias", "input": "hi", "instructions": "Be brief.", "tools": TOOLS,
        "tool_choice": {"type": "function", "name": "get_weather"}, "parallel_tool_calls": False,
        "temperature": 0.3, "top_p": 0.8, "max_output_tokens": 200, "metadata": {"ticket": "42"}, "store": False,
        "user": "u-1", "previous_response_id": "resp_prev", "reasoning": {"effort": "low", "summary": "auto"},
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}, "verbosity": "low"},
    })  # fmt: skip
    rendered = render_response(answer(Text("{}")), req)
    parsed = validated(rendered)
    assert parsed.instructions == "Be brief."
    assert [tool.type for tool in parsed.tools] == ["function", "custom"]  # web_search was dropped
    assert parsed.tool_choice.name == "get_weather" and parsed.parallel_tool_calls is False
    assert (parsed.temperature, parsed.top_p, parsed.max_output_tokens) == (0.3, 0.8, 200)
    assert parsed.metadata == {"ticket": "42"} and parsed.user == "u-1"
    assert parsed.previous_response_id == "resp_prev" and rendered["store"] is False
    assert parsed.reasoning.effort == "low" and parsed.reasoning.summary == "auto"
    assert parsed.text.format.type == "json_schema" and parsed.text.verbosity == "low"


def test_defaults_are_echoed_when_nothing_was_sent():
    rendered = render_response(answer(Text("x")), parse_request({"model": "m", "input": "hi"}))
    parsed = validated(rendered)
    assert (parsed.temperature, parsed.top_p, parsed.tool_choice, parsed.tools) == (1.0, 1.0, "auto", [])
    assert parsed.parallel_tool_calls is True and rendered["store"] is True and parsed.text.format.type == "text"


def test_a_plain_chat_request_renders_too():
    """Any canonical request can be answered in this format (e.g. a request parsed by another format)."""
    req = ChatRequest(model="m", messages=[Message("user", [Text("hi")])], temperature=0.5, max_tokens=9)
    parsed = validated(render_response(answer(Text("x")), req))
    assert (parsed.model, parsed.temperature, parsed.max_output_tokens, parsed.tools) == ("m", 0.5, 9, [])


def test_real_ids_have_openais_shape(monkeypatch):
    monkeypatch.undo()
    rendered = render_response(answer(Text("x"), ToolUse("t", "get_weather", {})), REQ)
    assert rendered["id"].startswith("resp_") and len(rendered["id"]) == len("resp_") + 48
    assert rendered["output"][0]["id"].startswith("msg_") and rendered["output"][1]["id"].startswith("fc_")
    assert rendered["id"] != render_response(answer(Text("x")), REQ)["id"]


# --- errors --------------------------------------------------------------------------------------------------


def test_render_error_is_the_openai_error_body():
    status, body, headers = responses.render_error(InvalidRequest("Bad tools.", param="tools[0].type"))
    assert status == 400 and headers == {"x-should-retry": "false"}
    assert orjson.loads(body) == {
        "error": {"message": "Bad tools.", "type": "invalid_request_error", "param": "tools[0].type", "code": None}
    }


def test_the_openai_sdk_raises_with_the_param():
    status, body, _ = responses.render_error(InvalidRequest("Bad tools.", param="tools[0].type"))
    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=body))
    client = openai.OpenAI(api_key="k", base_url="http://gw.test/v1", http_client=httpx.Client(transport=transport),
                           max_retries=0)  # fmt: skip
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="m", input="hi")
    assert raised.value.param == "tools[0].type" and "Bad tools." in str(raised.value)


def test_an_error_from_a_responses_upstream_goes_back_unchanged():
    raw_body = b'{"error": {"message": "Rate limit reached", "type": "tokens", "code": "rate_limit_exceeded"}}'
    err = responses.parse_error(429, raw_body, {"retry-after": "2", "x-request-id": "req_9", "other": "x"})
    assert err.kind == "rate_limit" and err.raw.api == "responses"
    assert responses.render_error(err) == (429, raw_body, {"retry-after": "2", "x-request-id": "req_9"})


def test_an_error_from_another_format_is_rendered():
    raw = RawError(api="anthropic", status=529, body=b"{}", headers={})
    status, body, _ = responses.render_error(UpstreamError("Overloaded", kind="overloaded", raw=raw))
    assert status == 503 and orjson.loads(body)["error"]["code"] == "server_is_overloaded"


def test_render_stream_error_is_an_error_event_the_sdk_raises_on():
    event = responses.render_stream_error(RateLimited("Slow down.", retry_after="3"))
    name, data = event.decode().removesuffix("\n\n").split("\n")
    assert name == "event: error"
    payload = json.loads(data.removeprefix("data: "))
    assert ResponseErrorEvent.model_validate(payload).message == "Slow down. Please try again in 3s."
    assert payload["error"] == {"type": "rate_limit_error", "code": "rate_limit_exceeded",
                                "message": "Slow down. Please try again in 3s.", "param": None}  # fmt: skip
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=event)
    )
    client = openai.OpenAI(api_key="k", base_url="http://gw.test/v1", http_client=httpx.Client(transport=transport))
    with pytest.raises(openai.APIError, match="Slow down"):
        for _ in client.responses.create(model="m", input="hi", stream=True):
            pass


def test_rate_limit_headers_are_openais():
    openai_limits = pytest.importorskip("proxy.formats.openai.limits")
    from proxy.canonical import LimitState, Limits

    limits = Limits(requests=LimitState(limit=60, remaining=59, reset_s=1.0), tokens=None)
    headers = responses.render_limit_headers(limits, 0.0)
    assert headers == openai_limits.render_limit_headers(limits, 0.0)
    assert headers["x-ratelimit-remaining-requests"] == "59"
