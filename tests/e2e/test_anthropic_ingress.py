"""POST /v1/messages through the real gateway, driven by the official anthropic SDK, for both upstream kinds:
gw-anthropic (pass-through to an Anthropic upstream) and gw-openai (translated to an OpenAI-compatible one)."""

import base64

import anthropic
import pytest

from .conftest import UPSTREAM_ALIASES

pytestmark = pytest.mark.parametrize("model", UPSTREAM_ALIASES)

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TIME_TOOL = {
    "name": "get_time",
    "description": "Local time in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
PNG_1PX = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


def test_create_returns_a_message_the_sdk_parses(world, model):
    message = world.anthropic().messages.create(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "SAY: hello there"}]
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.model == model or model == "gw-anthropic"  # translated responses echo the alias
    assert message.content[0].type == "text" and message.content[0].text == "hello there"
    assert message.stop_reason == "end_turn"
    assert message.id.startswith("msg_")
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


def test_stream_text_and_final_message(world, model):
    with world.anthropic().messages.stream(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "SAY: streaming works fine"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "streaming works fine"
    assert final.content[0].text == "streaming works fine"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_system_as_blocks_reaches_the_upstream(world, model):
    world.fake.state.requests.clear()
    world.anthropic().messages.create(
        model=model,
        max_tokens=50,
        system=[{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Answer in French."}],
        messages=[{"role": "user", "content": "SAY: ok"}],
    )
    sent = world.upstream_requests()[-1]["body"]
    if model == "gw-anthropic":
        assert [b["text"] for b in sent["system"]] == ["You are terse.", "Answer in French."]
    else:
        assert sent["messages"][0] == {"role": "system", "content": "You are terse.\n\nAnswer in French."}


def test_tool_round_trip_with_two_parallel_calls(world, model):
    client = world.anthropic()
    first = client.messages.create(
        model=model,
        max_tokens=200,
        tools=[WEATHER_TOOL, TIME_TOOL],
        messages=[
            {"role": "user", "content": 'USE_TOOL: get_weather {"city": "Paris"}\nUSE_TOOL: get_time {"city": "Oslo"}'}
        ],
    )
    assert first.stop_reason == "tool_use"
    calls = [b for b in first.content if b.type == "tool_use"]
    assert [(c.name, c.input) for c in calls] == [("get_weather", {"city": "Paris"}), ("get_time", {"city": "Oslo"})]
    assert all(c.id for c in calls)
    final = client.messages.create(
        model=model,
        max_tokens=200,
        tools=[WEATHER_TOOL, TIME_TOOL],
        messages=[
            {"role": "user", "content": 'USE_TOOL: get_weather {"city": "Paris"}\nUSE_TOOL: get_time {"city": "Oslo"}'},
            {"role": "assistant", "content": [c.model_dump() for c in first.content]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": calls[0].id, "content": "sunny, 21C"},
                    {"type": "tool_result", "tool_use_id": calls[1].id, "content": [{"type": "text", "text": "14:05"}]},
                ],
            },
        ],
    )
    assert final.stop_reason == "end_turn"
    assert final.content[0].text.startswith("Done: sunny, 21C")


def test_streamed_parallel_tool_calls_accumulate(world, model):
    with world.anthropic().messages.stream(
        model=model,
        max_tokens=200,
        tools=[WEATHER_TOOL, TIME_TOOL],
        messages=[{"role": "user", "content": 'USE_TOOL: get_weather {"city": "Rome"}\nUSE_TOOL: get_time {"city": "Lima"}'}],
    ) as stream:
        final = stream.get_final_message()
    calls = [b for b in final.content if b.type == "tool_use"]
    assert [(c.name, c.input) for c in calls] == [("get_weather", {"city": "Rome"}), ("get_time", {"city": "Lima"})]
    assert final.stop_reason == "tool_use"


def test_image_input(world, model):
    message = world.anthropic().messages.create(
        model=model,
        max_tokens=50,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_1PX}},
                    {"type": "text", "text": "What is this?"},
                ],
            }
        ],
    )
    assert message.content[0].text == "I see 1 image(s)."


def test_stop_sequence_is_reported(world, model):
    message = world.anthropic().messages.create(
        model=model, max_tokens=50, stop_sequences=["###"], messages=[{"role": "user", "content": "STOP_AT: ###"}]
    )
    assert message.content[0].text == "before"
    if model == "gw-anthropic":
        assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "###")
    else:  # an OpenAI upstream does not say which sequence matched (docs/translation.md §5.6)
        assert message.stop_reason == "end_turn"


def test_max_tokens_stop(world, model):
    message = world.anthropic().messages.create(
        model=model, max_tokens=3, messages=[{"role": "user", "content": "LENGTH"}]
    )
    assert message.stop_reason == "max_tokens"


def test_count_tokens(world, model):
    result = world.anthropic().messages.count_tokens(
        model=model, tools=[WEATHER_TOOL], messages=[{"role": "user", "content": "How many tokens is this?"}]
    )
    assert result.input_tokens > 10


@pytest.mark.parametrize(
    "trigger, exception, status",
    [
        ("FAIL: 400", anthropic.BadRequestError, 400),
        ("FAIL: 429", anthropic.RateLimitError, 429),
        ("FAIL: 529", anthropic.InternalServerError, 529),
        ("FAIL: 500", anthropic.InternalServerError, 500),
    ],
)
def test_upstream_errors_raise_the_right_sdk_exception(world, model, trigger, exception, status):
    with pytest.raises(exception) as caught:
        world.anthropic().messages.create(model=model, max_tokens=10, messages=[{"role": "user", "content": trigger}])
    assert caught.value.status_code == status
    assert caught.value.body["type"] == "error"
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "1"


def test_bad_key_is_an_authentication_error(world, model):
    client = anthropic.Anthropic(base_url=world.url, api_key="gh_notarealkey00000000000000", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client.messages.create(model=model, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.body["error"]["type"] == "authentication_error"


def test_unknown_model_is_not_found(world, model):
    with pytest.raises(anthropic.NotFoundError) as caught:
        world.anthropic().messages.create(
            model="no-such-" + model, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.body["error"]["type"] == "not_found_error"


def test_midstream_failure_becomes_an_error_event(world, model):
    with pytest.raises(anthropic.APIStatusError) as caught:
        with world.anthropic().messages.stream(
            model=model, max_tokens=100, messages=[{"role": "user", "content": "FAIL: midstream"}]
        ) as stream:
            for _ in stream:
                pass
    assert "overloaded" in str(caught.value).lower() or caught.value.body["error"]["type"] in ("overloaded_error", "api_error")


def test_truncated_upstream_stream_is_an_error_not_a_clean_end(world, model):
    with pytest.raises(anthropic.APIStatusError):
        with world.anthropic().messages.stream(
            model=model, max_tokens=100, messages=[{"role": "user", "content": "FAIL: early_eof"}]
        ) as stream:
            for _ in stream:
                pass
