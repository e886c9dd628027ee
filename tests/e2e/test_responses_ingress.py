"""POST /v1/responses through the real gateway, driven by the official openai SDK's `client.responses`, for both
upstream kinds: gw-openai (translated to Chat Completions) and gw-anthropic (translated to Anthropic Messages);
then the stored-response endpoints (previous_response_id, retrieve, delete, input_items), token counting and
errors in the Responses shape."""

import json
from pathlib import Path

import httpx
import openai
import pytest
from openai._models import construct_type_unchecked
from openai.lib.streaming.responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent
from pydantic import BaseModel

from proxy.formats.sse import SSEParser

from .conftest import UPSTREAM_ALIASES
from .test_anthropic_ingress import PNG_1PX

both = pytest.mark.parametrize("model", UPSTREAM_ALIASES)

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}


def last_upstream_request(world) -> dict:
    return world.upstream_requests()[-1]


def upstream_texts(request: dict) -> list[str]:
    """Every text the upstream request carries in its conversation, whatever its format."""
    body = request["body"]
    texts = []
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
    return texts


# --- create: plain, tools, structured output, reasoning, images ---------------------------------------------


@both
def test_create_returns_a_response_the_sdk_parses(world, model, ledger):
    raw = world.openai().responses.with_raw_response.create(model=model, input="SAY: hi from responses")
    response = raw.parse()
    assert response.object == "response" and response.id.startswith("resp_")
    assert response.status == "completed" and response.model == model
    assert response.output_text == "hi from responses"
    (message,) = response.output
    assert message.type == "message" and message.role == "assistant" and message.status == "completed"
    usage = response.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0 and usage.output_tokens_details.reasoning_tokens == 0
    row = ledger(raw.headers["x-request-id"])
    assert row.ingress_api == "responses" and row.http_status == 200 and row.output_tokens == usage.output_tokens
    assert row.cost_usd > 0


@both
def test_instructions_and_developer_messages_become_the_system_prompt(world, model):
    world.openai().responses.create(
        model=model,
        instructions="Be brief.",
        input=[
            {"role": "developer", "content": "Answer in English."},
            {"role": "user", "content": [{"type": "input_text", "text": "SAY: ok"}]},
        ],
    )
    body = last_upstream_request(world)["body"]
    if model == "gw-anthropic":
        assert [block["text"] for block in body["system"]] == ["Be brief.", "Answer in English."]
    else:
        system = [m["content"] for m in body["messages"] if m["role"] in ("system", "developer")]
        assert system == ["Be brief.", "Answer in English."]


@both
def test_function_tool_round_trip_by_replaying_items(world, model):
    client = world.openai()
    question = [{"role": "user", "content": 'USE_TOOL: get_weather {"city": "Paris"}'}]
    first = client.responses.create(model=model, input=question, tools=[WEATHER], store=False)
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    assert call.call_id and call.status == "completed" and first.status == "completed"
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21 C"}
    second = client.responses.create(
        model=model, input=[*question, *[item.model_dump() for item in first.output], output], tools=[WEATHER]
    )
    assert second.output_text == "Done: sunny, 21 C"


@both
def test_function_tool_round_trip_with_previous_response_id(world, model):
    client = world.openai()
    first = client.responses.create(model=model, input='USE_TOOL: get_weather {"city": "Oslo"}', tools=[WEATHER])
    (call,) = first.output
    second = client.responses.create(
        model=model,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "snow"}],
        tools=[WEATHER],
    )
    assert second.output_text == "Done: snow" and second.previous_response_id == first.id


class City(BaseModel):
    city: str
    population: int


@both
def test_structured_output_with_a_json_schema(world, model):
    parsed = world.openai().responses.parse(
        model=model, input='JSON: {"city": "Paris", "population": 2100000}', text_format=City
    )
    assert parsed.output_parsed == City(city="Paris", population=2100000)
    assert parsed.text.format.type == "json_schema"


@both
def test_reasoning_effort_gives_a_reasoning_item_with_its_summary(world, model):
    response = world.openai().responses.create(
        model=model, input="THINK: weighing options\nSAY: decided", reasoning={"effort": "low", "summary": "auto"}
    )
    reasoning, message = response.output
    assert reasoning.type == "reasoning" and [s.text for s in reasoning.summary] == ["weighing options"]
    assert message.content[0].text == "decided"
    assert response.reasoning.effort == "low"
    body = last_upstream_request(world)["body"]
    if model == "gw-anthropic":
        assert body["thinking"]["type"] == "enabled" and body["thinking"]["budget_tokens"] > 0
        assert reasoning.encrypted_content.startswith("gh1.")  # the signed block travels sealed


def test_sealed_reasoning_returns_to_anthropic_byte_exact(world):
    """R-5: Codex's way (store false, every item replayed): the thinking block and its signature come back."""
    client = world.openai()
    question = [{"role": "user", "content": 'THINK: check the forecast\nUSE_TOOL: get_weather {"city": "Rome"}'}]
    first = client.responses.create(
        model="gw-anthropic", input=question, tools=[WEATHER], reasoning={"effort": "medium"}, store=False,
        include=["reasoning.encrypted_content"],
    )  # fmt: skip
    _, call = first.output
    replay = [*question, *[item.model_dump(exclude_none=True) for item in first.output]]
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "warm"}
    second = client.responses.create(
        model="gw-anthropic", input=[*replay, output], tools=[WEATHER], reasoning={"effort": "medium"}, store=False
    )
    assert second.output_text == "Done: warm"
    assistant = last_upstream_request(world)["body"]["messages"][1]
    thinking, tool_use = assistant["content"]
    assert thinking["type"] == "thinking" and thinking["thinking"] == "check the forecast"
    assert thinking["signature"].startswith("fakesig_") and tool_use["type"] == "tool_use"


@both
def test_max_output_tokens_gives_an_incomplete_response(world, model):
    response = world.openai().responses.create(model=model, input="LENGTH", max_output_tokens=16)
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"


@both
def test_image_input(world, model):
    image = {"type": "input_image", "image_url": f"data:image/png;base64,{PNG_1PX}"}
    response = world.openai().responses.create(
        model=model, input=[{"role": "user", "content": [{"type": "input_text", "text": "what is this?"}, image]}]
    )
    assert response.output_text == "I see 1 image(s)."


def test_hosted_tools_are_dropped_and_named_in_a_header(world):
    raw = world.openai().responses.with_raw_response.create(
        model="gw-openai", input="SAY: no search", tools=[{"type": "web_search"}, WEATHER]
    )
    assert raw.headers["x-gatehouse-dropped-tools"] == "web_search"
    assert raw.parse().output_text == "no search"
    tools = last_upstream_request(world)["body"]["tools"]
    assert [tool["function"]["name"] for tool in tools] == ["get_weather"]


# --- streams ------------------------------------------------------------------------------------------------


@both
def test_stream_helper_accumulates_the_final_response(world, model):
    with world.openai().responses.stream(model=model, input="SAY: streamed in pieces") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert final.output_text == "streamed in pieces" and final.status == "completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "streamed in pieces"
    assert final.usage.output_tokens > 0


@both
def test_stream_with_a_tool_call(world, model):
    with world.openai().responses.stream(
        model=model, input='USE_TOOL: get_weather {"city": "Lima"}', tools=[WEATHER]
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    (call,) = final.output
    assert call.type == "function_call" and json.loads(call.arguments) == {"city": "Lima"}
    arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert arguments == call.arguments


@both
def test_stream_with_reasoning_summary_events(world, model):
    with world.openai().responses.stream(
        model=model, input="THINK: hmm\nSAY: yes", reasoning={"effort": "low", "summary": "auto"}
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta") == "hmm"
    assert [item.type for item in final.output] == ["reasoning", "message"] and final.output_text == "yes"


@both
def test_a_stream_that_breaks_ends_with_response_failed(world, model):
    raw = []
    with httpx.stream(
        "POST", f"{world.url}/v1/responses", headers={"authorization": f"Bearer {world.keys['alpha']}"},
        json={"model": model, "input": "SAY: " + "word " * 30 + "\nFAIL: midstream", "stream": True}, timeout=30,
    ) as response:  # fmt: skip
        assert response.status_code == 200
        raw = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    kinds = [event["type"] for event in raw]
    assert kinds[-2:] == ["error", "response.failed"] and "response.completed" not in kinds
    assert [event["sequence_number"] for event in raw] == list(range(len(raw)))
    assert raw[-1]["response"]["status"] == "failed" and raw[-1]["response"]["error"]["code"] == "server_error"
    with (
        pytest.raises(openai.APIError),
        world.openai().responses.stream(model=model, input="FAIL: midstream") as stream,
    ):
        list(stream)


# --- stored responses ---------------------------------------------------------------------------------------


@both
def test_previous_response_id_continues_the_conversation(world, model):
    client = world.openai()
    first = client.responses.create(model=model, input="SAY: the first answer", instructions="Be nice.")
    second = client.responses.create(model=model, input="SAY: the second answer", previous_response_id=first.id)
    assert second.output_text == "the second answer" and second.previous_response_id == first.id
    texts = upstream_texts(last_upstream_request(world))
    assert texts[-3:] == ["SAY: the first answer", "the first answer", "SAY: the second answer"]
    assert "Be nice." not in json.dumps(last_upstream_request(world)["body"])  # instructions do not carry over


@both
def test_a_streamed_response_is_stored_before_it_completes(world, model):
    client = world.openai()
    with client.responses.stream(model=model, input="SAY: streamed and stored") as stream:
        for event in stream:
            if event.type == "response.completed":  # the follow-up can start right now
                completed = event.response
                follow_up = client.responses.create(model=model, input="SAY: next", previous_response_id=completed.id)
        assert stream.get_final_response().output_text == "streamed and stored"
    assert follow_up.output_text == "next"
    stored = client.responses.retrieve(completed.id)
    assert (stored.status, stored.output_text, stored.usage) == ("completed", "streamed and stored", completed.usage)
    assert [item.id for item in stored.output] == [item.id for item in completed.output]


def test_retrieve_input_items_and_delete(world):
    client = world.openai()
    first = client.responses.create(model="gw-openai", input="SAY: one")
    second = client.responses.create(model="gw-openai", input="SAY: two", previous_response_id=first.id)
    assert client.responses.retrieve(second.id).output_text == "two"

    items = client.responses.input_items.list(second.id)
    assert [item.type for item in items.data] == ["message", "message", "message"]
    assert [item.role for item in items.data] == ["user", "assistant", "user"]  # newest first
    assert items.data[0].content[0].text == "SAY: two" and items.data[1].id == first.output[0].id
    assert items.first_id == items.data[0].id and items.last_id == items.data[-1].id and not items.has_more

    page = client.responses.input_items.list(second.id, order="asc", limit=2)
    assert [item.role for item in page.data] == ["user", "assistant"] and page.has_more
    rest = client.responses.input_items.list(second.id, order="asc", limit=2, after=page.last_id)
    assert [item.content[0].text for item in rest.data] == ["SAY: two"] and not rest.has_more
    assert [item.id for item in client.responses.input_items.list(second.id, order="asc")] == [
        *[item.id for item in page.data],
        *[item.id for item in rest.data],
    ]  # the SDK's auto-paging iterator

    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError) as gone:
        client.responses.retrieve(first.id)
    assert gone.value.body["message"] == f"Response with id '{first.id}' not found."
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(first.id)
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="gw-openai", input="SAY: three", previous_response_id=first.id)
    assert refused.value.body["param"] == "previous_response_id"
    assert client.responses.retrieve(second.id).id == second.id  # the follow-up keeps its own copy


def test_a_stored_response_is_visible_only_to_its_own_project(world):
    mine = world.openai("alpha").responses.create(model="gw-anthropic", input="SAY: private")
    other = world.openai("beta")
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.input_items.list(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(mine.id)
    with pytest.raises(openai.BadRequestError) as refused:
        other.responses.create(model="gw-anthropic", input="SAY: hi", previous_response_id=mine.id)
    assert refused.value.status_code == 400 and refused.value.body["param"] == "previous_response_id"
    assert world.openai("alpha").responses.retrieve(mine.id).output_text == "private"


@both
def test_store_false_stores_nothing(world, model):
    client = world.openai()
    response = client.responses.create(model=model, input="SAY: forget me", store=False)
    assert response.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with client.responses.stream(model=model, input="SAY: forget me too", store=False) as stream:
        streamed = stream.get_final_response()
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(streamed.id)


def test_unknown_previous_response_id_is_a_400(world):
    with pytest.raises(openai.BadRequestError) as refused:
        world.openai().responses.create(model="gw-openai", input="SAY: hi", previous_response_id="resp_nope")
    assert refused.value.body["param"] == "previous_response_id"
    assert refused.value.response.headers["x-request-id"]


def test_retention_purges_old_responses(world, committed):
    from datetime import timedelta

    from django.utils import timezone

    from proxy import responses_store
    from proxy.models import StoredResponse

    client = world.openai()
    old = client.responses.create(model="gw-openai", input="SAY: old")
    StoredResponse.objects.filter(id=old.id).update(created_at=timezone.now() - timedelta(days=31))
    with pytest.raises(openai.NotFoundError):  # past the retention: invisible at once
        client.responses.retrieve(old.id)
    assert responses_store.purge(days=30) >= 1
    assert not StoredResponse.objects.filter(id=old.id).exists()


# --- token counting -----------------------------------------------------------------------------------------


@both
def test_input_tokens_count(world, model):
    client = world.openai()
    small = client.responses.input_tokens.count(model=model, input="hello")
    large = client.responses.input_tokens.count(model=model, input="hello " * 200, tools=[WEATHER])
    assert small.object == "response.input_tokens" and 0 < small.input_tokens < large.input_tokens
    if model == "gw-anthropic":  # counted by the upstream (the fake counts UTF-8 bytes // 4)
        assert last_upstream_request(world)["path"] == "/v1/messages/count_tokens"


# --- errors in the Responses shape --------------------------------------------------------------------------


def test_unknown_model_is_a_404(world):
    with pytest.raises(openai.NotFoundError) as err:
        world.openai().responses.create(model="no-such-model", input="hi")
    assert err.value.body["code"] == "model_not_found" and err.value.response.headers["x-request-id"]


@both
def test_bad_bodies_are_400s_naming_the_parameter(world, model):
    client = world.openai()
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=model, input=[{"type": "nonsense"}])
    assert err.value.body["param"] == "input[0].type" and err.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=model, input="hi", tools=[{"type": "teleport"}])
    assert err.value.body["param"] == "tools[0].type" and "teleport" in err.value.body["message"]
    response = httpx.post(
        f"{world.url}/v1/responses", headers={"authorization": f"Bearer {world.keys['alpha']}"}, content=b"{not json"
    )
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"


@both
def test_upstream_errors_come_back_in_the_responses_shape(world, model):
    with pytest.raises(openai.RateLimitError) as err:
        world.openai().responses.create(model=model, input="FAIL: 429")
    assert set(err.value.response.json()["error"]) >= {"message", "type", "code"}


def test_bad_key_is_a_401_in_the_openai_shape(world):
    client = openai.OpenAI(base_url=world.url + "/v1", api_key="gh_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        client.responses.create(model="gw-openai", input="hi")
    assert err.value.response.json()["error"]["type"] == "invalid_request_error"


# --- Codex's own requests (tests/fixtures/codex/requests, recorded by test_codex_cli) replayed ---------------

CODEX_FIXTURES = sorted((Path(__file__).resolve().parent.parent / "fixtures" / "codex" / "requests").glob("*.json"))
CODEX_EXPECT = {  # fixture -> the output the fake's script gives
    "lite-1": ("custom_tool_call", "exec"),
    "lite-2": ("message", "Done: "),
    "resume-1": ("message", "the first answer"),
    "resume-2": ("message", "the second answer"),
    "shell-1": ("function_call", "exec_command"),
    "shell-2": ("message", "Done: Chunk ID"),
}


@both
@pytest.mark.parametrize("fixture", CODEX_FIXTURES, ids=lambda path: path.stem)
def test_codex_requests_replay(world, model, fixture):
    """Through the gateway to both upstream kinds, read by the SDK's stream accumulator as Codex would read it."""
    capture = json.loads(fixture.read_text())
    headers = {k: v for k, v in capture["headers"].items() if k not in ("authorization", "accept-encoding")}
    headers["authorization"] = f"Bearer {world.keys['alpha']}"
    body = {**capture["body"], "model": model}
    with httpx.stream("POST", world.url + capture["path"], headers=headers, json=body, timeout=30) as response:
        assert response.status_code == 200, response.read()
        events = [json.loads(event.data) for event in SSEParser().feed(response.read())]
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    state = ResponseStreamState(input_tools=openai.omit, text_format=openai.omit)
    for event in events:
        state.handle_event(construct_type_unchecked(type_=ResponseStreamEvent, value=event))
    final = state._completed_response  # what ResponseStream.get_final_response() returns
    kind, expected = CODEX_EXPECT[fixture.stem]
    (item,) = [item for item in final.output if item.type != "reasoning"]
    assert item.type == kind and (final.output_text if kind == "message" else item.name).startswith(expected)


# --- a Responses upstream (provider kind openai_responses): pass-through, and the other APIs translated to it --


@pytest.fixture(scope="module")
def native(world, django_db_blocker) -> str:
    """An alias served by the fake's own /v1/responses."""
    from .policy_world import provider, route, wait_for_config

    with django_db_blocker.unblock():
        alias = route((provider(world.fake, kind="openai_responses", base_url=world.fake.openai_url), "fake-gpt", 0))
    wait_for_config(world.url, world.keys["alpha"], alias)
    return alias


def test_pass_through_to_a_responses_upstream(world, native, ledger):
    raw = world.openai().responses.with_raw_response.create(
        model=native, input="SAY: native answer", tools=[{"type": "web_search"}, WEATHER], instructions="Be brief."
    )
    response = raw.parse()
    assert response.output_text == "native answer" and response.id.startswith("resp_fake_")  # the upstream's own
    assert "x-gatehouse-dropped-tools" not in raw.headers  # a native upstream runs hosted tools
    upstream = last_upstream_request(world)
    assert upstream["path"] == "/v1/responses" and upstream["body"]["model"] == "fake-gpt"
    assert upstream["body"]["tools"][0] == {"type": "web_search"} and upstream["body"]["instructions"] == "Be brief."
    row = ledger(raw.headers["x-request-id"])
    assert (row.ingress_api, row.upstream_api, row.remote_model) == ("responses", "responses", "fake-gpt")
    assert row.output_tokens == response.usage.output_tokens and row.input_tokens > 0
    assert world.openai().responses.retrieve(response.id).output_text == "native answer"


def test_pass_through_stream_and_follow_up(world, native):
    client = world.openai()
    with client.responses.stream(model=native, input="SAY: streamed natively") as stream:
        first = stream.get_final_response()
    assert first.output_text == "streamed natively"
    second = client.responses.create(model=native, input="SAY: and again", previous_response_id=first.id)
    assert second.output_text == "and again"
    body = last_upstream_request(world)["body"]
    assert "previous_response_id" not in body  # resolved by the gateway: the input carries the history
    assert [item.get("role") for item in body["input"]] == ["user", "assistant", "user"]


def test_pass_through_cut_stream_ends_with_response_failed(world, native):
    with httpx.stream(
        "POST", f"{world.url}/v1/responses", headers={"authorization": f"Bearer {world.keys['alpha']}"},
        json={"model": native, "input": "SAY: " + "word " * 30 + "\nFAIL: early_eof", "stream": True}, timeout=30,
    ) as response:  # fmt: skip
        events = [json.loads(event.data) for event in SSEParser().feed(response.read())]
    assert [event["type"] for event in events[-2:]] == ["error", "response.failed"]
    assert [event["sequence_number"] for event in events] == list(range(len(events)))  # numbered on
    assert events[-1]["response"]["id"] == events[0]["response"]["id"]


def test_other_apis_are_translated_to_a_responses_upstream(world, native):
    completion = world.openai().chat.completions.create(
        model=native, messages=[{"role": "user", "content": "SAY: from chat completions"}]
    )
    assert completion.choices[0].message.content == "from chat completions"
    message = world.anthropic().messages.create(
        model=native, max_tokens=100, messages=[{"role": "user", "content": "SAY: from anthropic"}]
    )
    assert message.content[0].text == "from anthropic"
    body = last_upstream_request(world)["body"]
    assert body["input"][0]["role"] == "user" and body["store"] is False
