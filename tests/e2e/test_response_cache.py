"""The exact response cache through the real server: a repeated deterministic request is answered without an
upstream call, in the caller's format (streamed with the same event grammar when the caller streams), marked
X-Cache, and recorded as a cache_hit with cost 0 and the cost it saved."""

import time
from decimal import Decimal

import httpx
import orjson
import pytest

from tests.e2e.optimize_world import key_with, marker, upstream_calls


@pytest.fixture(scope="module", autouse=True)
def _forget_cache_keys():
    yield
    import redis
    from django.conf import settings

    if settings.REDIS_URL:  # this run's entries (tests use unique prompts; this keeps the db tidy)
        client = redis.Redis.from_url(settings.REDIS_URL)
        for name in client.scan_iter("gh:rcache:*"):
            client.delete(name)


def _anthropic(world, secret, text, **extra):
    body = {"model": "gw-anthropic", "max_tokens": 100, "temperature": 0, "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{world.url}/v1/messages", headers={"x-api-key": secret, "anthropic-version": "2023-06-01"},
                      json={**body, **extra}, timeout=30)  # fmt: skip


def test_a_repeated_request_is_answered_from_the_cache_with_cost_zero_and_the_saving_recorded(world, committed, ledger):
    secret, mark = key_with(response_cache_ttl=60), marker()
    text = f"SAY: cached answer {mark}\nUSAGE: in=1000 out=20"
    first, second = _anthropic(world, secret, text), _anthropic(world, secret, text)
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert second.json() == first.json()
    assert len(upstream_calls(world.fake, mark)) == 1
    miss, hit = ledger(first.headers["request-id"]), ledger(second.headers["request-id"])
    assert miss.outcome == "ok" and miss.cost_usd == (1000 * Decimal(3) + 20 * Decimal(15)) / Decimal(1_000_000)
    assert (hit.outcome, hit.cost_usd, hit.input_tokens, hit.http_status) == ("cache_hit", 0, 0, 200)
    assert hit.saved_usd == miss.cost_usd and hit.tokens_saved == 1000
    assert hit.remote_model == "fake-claude" and hit.alias == "gw-anthropic"


def test_a_streaming_caller_gets_a_cached_answer_as_a_proper_stream(world, committed):
    """Stored from a complete answer with a tool call; replayed to the Anthropic SDK's stream parser."""
    secret, mark = key_with(response_cache_ttl=60), marker()
    tools = [{"name": "lookup", "description": "d", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}]
    text = f"THINK: pondering {mark}\nSAY: here it comes\nUSE_TOOL: lookup"
    import anthropic

    client = anthropic.Anthropic(base_url=world.url, api_key=secret, max_retries=0)
    kwargs = dict(model="gw-anthropic", max_tokens=200, extra_body={"temperature": 0}, tools=tools,
                  messages=[{"role": "user", "content": text}])  # fmt: skip
    stored = client.messages.create(**kwargs)
    with client.messages.stream(**kwargs, metadata={"user_id": "someone-else"}) as stream:
        events = [event.type for event in stream]
        replayed = stream.get_final_message()
        assert stream.response.headers["x-cache"] == "HIT"
    assert len(upstream_calls(world.fake, mark)) == 1
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert [b.model_dump() for b in replayed.content] == [b.model_dump() for b in stored.content]
    assert replayed.stop_reason == stored.stop_reason == "tool_use"
    assert [b.type for b in replayed.content] == ["thinking", "text", "tool_use"]


def test_a_streamed_answer_is_stored_and_replayed_to_an_openai_client_both_ways(world, committed, ledger):
    secret, mark = key_with(response_cache_ttl=60), marker()
    import openai

    client = openai.OpenAI(base_url=world.url + "/v1", api_key=secret, max_retries=0)
    kwargs = dict(model="gw-openai", temperature=0, messages=[{"role": "user", "content": f"SAY: streamed once {mark}"}])
    live = client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
    live_chunks = list(live)
    time.sleep(0.2)  # the entry is written after the stream's end, off the response path
    again = client.chat.completions.with_raw_response.create(**kwargs, stream=True, stream_options={"include_usage": True})
    cached_chunks = list(again.parse())
    complete = client.chat.completions.with_raw_response.create(**kwargs)
    assert (again.headers["x-cache"], complete.headers["x-cache"]) == ("HIT", "HIT")
    text = lambda chunks: "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)  # noqa: E731
    assert text(cached_chunks) == text(live_chunks) == f"streamed once {mark}"
    assert complete.parse().choices[0].message.content == f"streamed once {mark}"
    assert cached_chunks[-1].usage is not None and cached_chunks[-1].usage.prompt_tokens == live_chunks[-1].usage.prompt_tokens
    assert len(upstream_calls(world.fake, mark)) == 1
    assert ledger(again.headers["x-request-id"]).outcome == "cache_hit"


def test_only_deterministic_requests_are_cached_unless_the_project_opts_in(world, committed):
    secret, mark = key_with(response_cache_ttl=60), marker()
    text = f"SAY: creative {mark}"
    answers = [_anthropic(world, secret, text, temperature=1) for _ in range(2)]
    assert [a.headers["x-cache"] for a in answers] == ["MISS", "MISS"]
    assert len(upstream_calls(world.fake, mark)) == 2
    anything, mark = key_with(response_cache_ttl=60, response_cache_any=True), marker()
    answers = [_anthropic(world, anything, f"SAY: creative {mark}", temperature=1) for _ in range(2)]
    assert [a.headers["x-cache"] for a in answers] == ["MISS", "HIT"]


def test_the_key_is_the_project_model_and_request_not_the_stream_flag_or_metadata(world, committed):
    secret, mark = key_with(response_cache_ttl=60), marker()
    other_project = key_with(response_cache_ttl=60)
    text = f"SAY: keyed {mark}"
    assert _anthropic(world, secret, text).headers["x-cache"] == "MISS"
    assert _anthropic(world, secret, text, metadata={"user_id": "u2"}).headers["x-cache"] == "HIT"
    assert _anthropic(world, secret, text, max_tokens=101).headers["x-cache"] == "MISS"  # a sampling parameter
    assert _anthropic(world, secret, text + " ").headers["x-cache"] == "MISS"  # another prompt
    assert _anthropic(world, other_project, text).headers["x-cache"] == "MISS"  # another project


def test_per_route_opt_in_and_expiry(world, committed):
    secret, mark = key_with(response_cache_ttl=1, response_cache_models="gw-anthropic"), marker()
    text = f"SAY: short lived {mark}"
    assert [_anthropic(world, secret, text).headers["x-cache"] for _ in range(2)] == ["MISS", "HIT"]
    time.sleep(1.3)
    assert _anthropic(world, secret, text).headers["x-cache"] == "MISS"
    other = httpx.post(f"{world.url}/v1/chat/completions", headers={"authorization": f"Bearer {secret}"}, timeout=30,
                       json={"model": "gw-openai", "temperature": 0, "messages": [{"role": "user", "content": text}]})
    assert other.status_code == 200 and "x-cache" not in other.headers


def test_a_project_without_the_cache_sees_no_cache_header_and_failures_are_not_cached(world, committed):
    plain = world.keys["alpha"]
    assert "x-cache" not in _anthropic(world, plain, "SAY: plain").headers
    secret, mark = key_with(response_cache_ttl=60), marker()
    failed = _anthropic(world, secret, f"FAIL: 400 {mark}")
    assert failed.status_code == 400 and failed.headers["x-cache"] == "MISS"
    assert _anthropic(world, secret, f"FAIL: 400 {mark}").headers["x-cache"] == "MISS"
    assert orjson.loads(failed.content)["type"] == "error"


def test_a_route_sets_its_own_cache_lifetime_or_opts_out(world, committed):
    """The project turns the cache on; a route may keep its answers for a TTL of its own, or never (0)."""
    from tests.e2e import policy_world as pw

    secret, mark = key_with(response_cache_ttl=60), marker()
    claude = pw.provider(world.fake, kind="anthropic")
    never = pw.route((claude, "fake-claude", 0), response_cache_ttl=0)
    briefly = pw.route((claude, "fake-claude", 0), response_cache_ttl=1)
    pw.wait_for_config(world.url, secret, briefly)
    text = f"SAY: per route {mark}"
    answers = [_anthropic(world, secret, text, model=never) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200] and all("x-cache" not in a.headers for a in answers)
    assert len(upstream_calls(world.fake, mark)) == 2  # never cached: both went upstream
    first, second = (_anthropic(world, secret, text + " again", model=briefly) for _ in range(2))
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    time.sleep(1.3)  # past the route's own 1 s, well inside the project's 60 s
    assert _anthropic(world, secret, text + " again", model=briefly).headers["x-cache"] == "MISS"
    assert len(upstream_calls(world.fake, mark)) == 4
