"""Token reduction and the response cache for OpenAI Responses callers (Codex's API) through the real server,
driven by the official openai SDK's `client.responses`, to the three upstream kinds: translated to Chat
Completions (gw-openai) and to Anthropic Messages (gw-anthropic), and passed through to a Responses upstream."""

import itertools
import time

import httpx
import openai
import pytest

from proxy.formats.sse import SSEParser
from tests.e2e.optimize_world import key_with, marker, upstream_calls

FILE = "def handler(event):\n    return event['body']\n" * 30  # a file read twice: over dedupe's 200 characters  # 30 lines
KINDS = ["gw-openai", "gw-anthropic", "native"]


@pytest.fixture(scope="module")
def native_alias(world, django_db_blocker) -> str:
    """An alias served by the fake's own /v1/responses (provider kind openai_responses)."""
    from .policy_world import provider, route, wait_for_config

    with django_db_blocker.unblock():
        alias = route((provider(world.fake, kind="openai_responses", base_url=world.fake.openai_url), "fake-gpt", 0))
    wait_for_config(world.url, world.keys["alpha"], alias)
    return alias


@pytest.fixture
def alias(request, native_alias) -> str:
    return native_alias if request.param == "native" else request.param


@pytest.fixture(scope="module", autouse=True)
def _forget_cache_keys():
    yield
    import redis
    from django.conf import settings

    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL)
        for name in client.scan_iter("gh:rcache:*"):
            client.delete(name)


def client(world, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=world.url + "/v1", api_key=secret, max_retries=0)


def codex_input(mark: str) -> list[dict]:
    """Codex's shape: a developer prompt, a user task, a reasoning item, the same file read twice, a new prompt."""
    calls = [
        item
        for n in (1, 2)
        for item in (
            {"type": "function_call", "call_id": f"call_{n}", "name": "exec_command", "arguments": '{"cmd":"cat h.py"}'},
            {"type": "function_call_output", "call_id": f"call_{n}", "output": FILE},
        )
    ]
    return [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "read h.py twice"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA-not-ours"},
        *calls,
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "read it"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": f"SAY: reduced {mark}"}]},
    ]


def upstream_texts(body: dict) -> str:
    return str(body.get("system", "")) + str(body.get("instructions", "")) + str(body.get("messages", body.get("input")))


# --- token reduction --------------------------------------------------------------------------------------


@pytest.mark.parametrize("alias", KINDS, indirect=True)
@pytest.mark.parametrize("stream", [False, True])
def test_the_upstream_gets_the_reduced_body_and_the_ledger_the_saving(world, committed, ledger, alias, stream):
    secret, mark = key_with(dedupe_tool_results=True, diff_first=True, cache_breakpoints=True), marker()
    tools = [{"type": "function", "name": "exec_command", "parameters": {"type": "object", "properties": {}}}]
    api = client(world, secret).responses
    if stream:
        with api.with_streaming_response.create(model=alias, input=codex_input(mark), tools=tools, stream=True) as raw:
            headers = raw.headers
            events = list(raw.parse())
        assert events[-1].type == "response.completed" and events[-1].response.output_text == f"reduced {mark}"
    else:
        raw = api.with_raw_response.create(model=alias, input=codex_input(mark), tools=tools)
        headers = raw.headers
        assert raw.parse().output_text == f"reduced {mark}"
    layers, saved = headers["x-gateway-reduction"].split("; tokens_saved=")
    marked = alias == "gw-anthropic"  # breakpoints: Anthropic upstreams only
    assert layers == "dedupe,diff_first" + (",breakpoints" if marked else "") and int(saved) > 100
    (upstream,) = upstream_calls(world.fake, mark)
    sent = upstream_texts(upstream["body"])
    assert sent.count("def handler(event)") == 30 and "identical to the result of tool call call_1" in sent
    assert "unified diff" in sent and ("cache_control" in str(upstream["body"])) == marked
    if marked:  # the system prompt's end and the latest user turn and tool results carry the mark, 4 at most
        body = upstream["body"]
        assert body["system"][-1]["cache_control"] == {"type": "ephemeral"}
        turns = [b for m in body["messages"] if m["role"] == "user" for b in m["content"]]
        nested = [p for b in turns if b["type"] == "tool_result" for p in b.get("content") or []]
        assert sum("cache_control" in b for b in turns + nested) == 3
        assert "cache_control" in body["messages"][-1]["content"][-1]
    if alias not in ("gw-openai", "gw-anthropic"):  # passed through: the caller's own body, reduced in place
        items = upstream["body"]["input"]
        assert items[1] == {"type": "message", "role": "developer", "content": items[1]["content"]}
        (reasoning,) = [item for item in items if item.get("type") == "reasoning"]
        assert "unified diff" in items[1]["content"] and reasoning["encrypted_content"] == "gAAAA-not-ours"
    row = ledger(headers["x-request-id"])
    assert (row.reductions, row.tokens_saved, row.outcome) == (layers, int(saved), "ok")


def test_a_stored_response_keeps_the_input_the_caller_sent(world, committed):
    """R-8: the store and a follow-up's history hold the caller's items, each turn is reduced afresh."""
    secret, mark = key_with(dedupe_tool_results=True, diff_first=True), marker()
    api = client(world, secret).responses
    first = api.create(model="gw-openai", input=codex_input(mark))  # store defaults to true
    listed = api.input_items.list(first.id, order="asc").data
    assert len(listed) == len(codex_input(mark)) and all("unified diff" not in str(i) for i in listed)
    assert [getattr(i, "output", None) for i in listed if i.type == "function_call_output"] == [FILE, FILE]
    follow = api.create(model="gw-openai", input=f"SAY: again {mark}x", previous_response_id=first.id)
    assert follow.output_text == f"again {mark}x"
    (upstream,) = upstream_calls(world.fake, f"{mark}x")
    assert str(upstream["body"]).count("unified diff") == 1  # one instruction, not one per turn


# --- the response cache -----------------------------------------------------------------------------------


def grammar(events: list[dict]) -> list[str]:
    return [kind for kind, _ in itertools.groupby(e["type"] for e in events)]


def read_stream(response: httpx.Response) -> list[dict]:
    import json

    return [json.loads(event.data) for event in SSEParser().feed(response.read())]


@pytest.mark.parametrize("alias", KINDS, indirect=True)
def test_a_repeated_request_is_answered_from_the_cache_whole_and_streamed(world, committed, ledger, alias):
    secret, mark = key_with(response_cache_ttl=60), marker()
    api = client(world, secret).responses
    kwargs = dict(model=alias, temperature=0, input=f"THINK: hmm {mark}\nSAY: cached {mark}\nUSAGE: in=1000 out=20",
                  tools=[{"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}])  # fmt: skip
    live = api.with_raw_response.create(**kwargs)
    stored = live.parse()
    hit = api.with_raw_response.create(**kwargs, metadata={"who": "someone else"})
    again = hit.parse()
    assert (live.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    assert again.id != stored.id and again.output_text == stored.output_text == f"cached {mark}"
    assert [i.model_dump() for i in again.output] == [i.model_dump() for i in stored.output]
    assert again.metadata == {"who": "someone else"}  # this request's echo, not the first one's
    if alias == "gw-anthropic":  # signed thinking sealed into encrypted_content: given back byte-identical
        assert stored.output[0].type == "reasoning" and stored.output[0].encrypted_content
        assert again.output[0].encrypted_content == stored.output[0].encrypted_content
    with api.stream(**kwargs) as stream:  # the SDK's accumulator over the replayed SSE
        replayed = stream.get_final_response()
        assert stream._response.headers["x-cache"] == "HIT"
    dump = lambda items: [i.model_dump(exclude_none=True) for i in items]  # noqa: E731  (the parsed: None the accumulator adds)
    assert dump(replayed.output) == dump(stored.output)
    assert len(upstream_calls(world.fake, mark)) == 1
    miss, row = ledger(live.headers["x-request-id"]), ledger(hit.headers["x-request-id"])
    assert (row.outcome, row.cost_usd, row.input_tokens, row.http_status, row.ingress_api) == (
        "cache_hit", 0, 0, 200, "responses")
    assert row.saved_usd == miss.cost_usd > 0 and row.tokens_saved == 1000


@pytest.mark.parametrize("alias", KINDS, indirect=True)
def test_a_streamed_answer_is_stored_from_its_terminal_event_and_replayed_both_ways(world, committed, ledger, alias):
    secret, mark = key_with(response_cache_ttl=60), marker()
    body = {"model": alias, "temperature": 0, "stream": True, "store": False,
            "input": [{"role": "user", "content": f"THINK: plan {mark}\nSAY: streamed {mark}"}]}  # fmt: skip
    headers = {"authorization": f"Bearer {secret}"}
    with httpx.stream("POST", f"{world.url}/v1/responses", headers=headers, json=body, timeout=30) as live:
        live_events = read_stream(live)
    time.sleep(0.3)  # the entry is written after the stream's end, off the response path
    with httpx.stream("POST", f"{world.url}/v1/responses", headers=headers, json=body, timeout=30) as hit:
        assert hit.headers["x-cache"] == "HIT"
        hit_events = read_stream(hit)
    assert [e["sequence_number"] for e in hit_events] == list(range(len(hit_events)))
    assert grammar(hit_events) == grammar(live_events)  # the same events, one delta where the live had several
    final_live, final_hit = live_events[-1]["response"], hit_events[-1]["response"]
    assert hit_events[-1]["type"] == "response.completed" and final_hit["output"] == final_live["output"]
    assert hit_events[0]["response"]["id"] == final_hit["id"] != final_live["id"]
    whole = client(world, secret).responses.with_raw_response.create(**{k: v for k, v in body.items() if k != "stream"})
    assert whole.headers["x-cache"] == "HIT" and whole.parse().output_text == f"streamed {mark}"
    assert len(upstream_calls(world.fake, mark)) == 1
    assert ledger(hit.headers["x-request-id"]).outcome == "cache_hit"


def test_a_hit_is_stored_under_its_own_id_and_a_follow_up_is_never_cached(world, committed):
    secret, mark = key_with(response_cache_ttl=60), marker()
    api = client(world, secret).responses
    first = api.create(model="gw-anthropic", temperature=0, input=f"SAY: first {mark}")
    hit = api.with_raw_response.create(model="gw-anthropic", temperature=0, input=f"SAY: first {mark}")
    assert hit.headers["x-cache"] == "HIT" and api.retrieve(hit.parse().id).output_text == f"first {mark}"
    follow = dict(model="gw-anthropic", temperature=0, input=f"SAY: next {mark}", previous_response_id=first.id)
    answers = [api.with_raw_response.create(**follow) for _ in range(2)]
    assert [a.headers["x-cache"] for a in answers] == ["MISS", "MISS"]  # state outside the body: never keyed
    assert len(upstream_calls(world.fake, f"next {mark}")) == 2
