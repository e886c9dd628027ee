"""The request core is usable without HTTP, exactly as a Celery batch job will use it: an authenticated key, the
ingress API and a body in, the answer out, with the same routing, policies and ledger as live traffic."""

import asyncio

import orjson
import pytest

from tests.e2e import policy_world as pw


def _in_own_loop(coro):
    """As a Celery task runs it: one event loop for the job, the upstream connections closed at its end."""
    from proxy.upstreams import http

    async def job():
        try:
            return await coro
        finally:
            await http.close_all()

    return asyncio.run(job())


def _key(secret):
    from accounts.keys import key_by_id
    from accounts.models import ApiKey

    return key_by_id(ApiKey.objects.get(prefix=secret[:11]).id)


def test_core_runs_a_request_to_its_end_and_records_it_like_a_live_one(world, committed, ledger):
    from proxy import core

    key = _key(pw.key(pw.project(rpm_limit=100)))
    body = {"model": "gw-openai", "max_tokens": 50, "messages": [{"role": "user", "content": "SAY: from a job"}]}

    result = _in_own_loop(core.run_to_end(key, "anthropic", body))
    assert result.status == 200 and orjson.loads(result.content)["content"][0]["text"] == "from a job"
    assert result.headers["anthropic-ratelimit-requests-remaining"] == "99"
    streamed = _in_own_loop(core.run_to_end(key, "anthropic", {**body, "stream": True}))
    assert b"event: message_stop" in streamed.content
    assert streamed.headers["anthropic-ratelimit-requests-remaining"] == "98"  # one window, shared by both

    row = ledger(result.headers["request-id"])
    assert (row.outcome, row.api_key_id, row.alias, row.attempts) == ("ok", key.id, "gw-openai", 1)
    assert row.output_tokens > 0 and ledger(streamed.headers["request-id"]).stream is True


def test_core_refusals_are_gateway_errors_carrying_their_headers(world, committed, ledger):
    from proxy import core
    from proxy.errors import NotFound

    key = _key(pw.key(pw.project()))
    with pytest.raises(NotFound) as refused:
        _in_own_loop(core.run_to_end(key, "openai", {"model": "no-such-model", "messages": []}))
    assert refused.value.status == 404
    assert ledger(refused.value.headers["x-request-id"]).outcome == "client_error"
