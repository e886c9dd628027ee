"""POST /v1/chat/completions through the real gateway, driven by the official openai SDK, for both upstream
kinds: gw-openai (pass-through) and gw-anthropic (translated to the Anthropic Messages API)."""

import json

import openai
import pytest
from pydantic import BaseModel

from .conftest import UPSTREAM_ALIASES
from .test_anthropic_ingress import PNG_1PX

pytestmark = pytest.mark.parametrize("model", UPSTREAM_ALIASES)

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name} for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
    for name in ("get_weather", "get_time")
]


def test_create_returns_a_completion_the_sdk_parses(world, model):
    completion = world.openai().chat.completions.create(
        model=model, messages=[{"role": "user", "content": "SAY: hi from openai"}]
    )
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "hi from openai"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens > 0 and completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_stream_with_usage_chunk(world, model):
    stream = world.openai().chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "SAY: chunk by chunk"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "chunk by chunk"
    assert len({c.id for c in chunks}) == 1
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]


def test_stream_without_usage_request_has_no_usage_chunk(world, model):
    chunks = list(
        world.openai().chat.completions.create(
            model=model, messages=[{"role": "user", "content": "SAY: no usage please"}], stream=True
        )
    )
    assert all(c.choices for c in chunks)  # no `choices: []` usage chunk the client did not ask for


def test_stream_helper(world, model):
    with world.openai().chat.completions.stream(
        model=model, messages=[{"role": "user", "content": "SAY: helper streams"}]
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "helper streams"


def test_tool_round_trip_with_two_parallel_calls(world, model):
    client = world.openai()
    messages = [{"role": "user", "content": 'USE_TOOL: get_weather {"city": "Paris"}\nUSE_TOOL: get_time {"city": "Oslo"}'}]
    first = client.chat.completions.create(model=model, messages=messages, tools=TOOLS)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"city": "Oslo"}),
    ]
    messages.append(choice.message.model_dump(exclude_none=True))
    messages += [
        {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny, 21C"},
        {"role": "tool", "tool_call_id": calls[1].id, "content": "14:05"},
    ]
    final = client.chat.completions.create(model=model, messages=messages, tools=TOOLS)
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.content.startswith("Done: ")


def test_streamed_tool_calls_accumulate(world, model):
    with world.openai().chat.completions.stream(
        model=model,
        messages=[{"role": "user", "content": 'USE_TOOL: get_weather {"city": "Rome"}\nUSE_TOOL: get_time {"city": "Lima"}'}],
        tools=TOOLS,
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Rome"}),
        ("get_time", {"city": "Lima"}),
    ]


def test_legacy_function_calling(world, model):
    completion = world.openai().chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": 'USE_TOOL: get_weather {"city": "Bern"}'}],
        functions=[TOOLS[0]["function"]],
    )
    message = completion.choices[0].message
    call = message.function_call or message.tool_calls[0].function
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Bern"}


def test_image_input(world, model):
    completion = world.openai().chat.completions.create(
        model=model,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_1PX}"}},
                ],
            }
        ],
    )
    assert completion.choices[0].message.content == "I see 1 image(s)."


class City(BaseModel):
    name: str
    population: int


def test_response_format_json_schema(world, model):
    completion = world.openai().chat.completions.parse(
        model=model,
        messages=[{"role": "user", "content": 'JSON: {"name": "Oslo", "population": 709000}'}],
        response_format=City,
    )
    assert completion.choices[0].message.parsed == City(name="Oslo", population=709000)


@pytest.mark.parametrize(
    "trigger, exception, status",
    [
        ("FAIL: 400", openai.BadRequestError, 400),
        ("FAIL: 429", openai.RateLimitError, 429),
        ("FAIL: 500", openai.InternalServerError, 500),
    ],
)
def test_upstream_errors_raise_the_right_sdk_exception(world, model, trigger, exception, status):
    with pytest.raises(exception) as caught:
        world.openai().chat.completions.create(model=model, messages=[{"role": "user", "content": trigger}])
    assert caught.value.status_code == status
    assert set(caught.value.body) >= {"message", "type"}


def test_overloaded_upstream_is_a_5xx(world, model):
    with pytest.raises(openai.InternalServerError) as caught:
        world.openai().chat.completions.create(model=model, messages=[{"role": "user", "content": "FAIL: 529"}])
    assert caught.value.status_code in (503, 529)


def test_bad_key_is_an_authentication_error(world, model):
    client = openai.OpenAI(base_url=world.url + "/v1", api_key="gh_notarealkey000000000000", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])


def test_unknown_model_is_not_found(world, model):
    with pytest.raises(openai.NotFoundError) as caught:
        world.openai().chat.completions.create(model="no-such-" + model, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "model_not_found"


def test_midstream_failure_raises_in_the_sdk(world, model):
    with pytest.raises(openai.APIError):
        for _ in world.openai().chat.completions.create(
            model=model, messages=[{"role": "user", "content": "FAIL: midstream"}], stream=True
        ):
            pass
