"""The recorded Claude Code session (tests/fixtures/sessions, recorded with the real CLI) sent over real HTTP
through the real server, twice: by a project with no layer and by one with every layer on, to an Anthropic fake
with provider prompt caching simulated. What `python -m bench.replay_savings` measures in process must hold through the
server: every request answered, each row's reductions recorded, and the ledger's cost at least 50% lower
(measured: $0.2541 -> $0.1236, -51.4%, the same as in process)."""

from decimal import Decimal

import httpx
import pytest

from bench import replay_savings
from tests.e2e import policy_world as pw
from tests.e2e.conftest import FAKE_KEY
from tests.e2e.optimize_world import key_with
from tests.fakes.upstream import FakeUpstream

MODEL = "fake-sonnet"
ALL = {k: v for k, v in replay_savings.layers()[-1][1].items() if k != "route_background"}  # no small model here


@pytest.fixture(scope="module")
def caching_fake():
    with FakeUpstream(key=FAKE_KEY, prompt_cache=True) as fake:
        yield fake


def _route(world, fake) -> str:
    from usage.models import ModelPrice

    provider = pw.provider(fake, kind="anthropic", base_url=fake.url)
    if not ModelPrice.objects.filter(model=MODEL).exists():
        ModelPrice.objects.create(model=MODEL, effective_from="2020-01-01", input_per_mtok=Decimal(3),
                                  output_per_mtok=Decimal(15), cache_read_per_mtok=Decimal("0.30"),
                                  cache_write_per_mtok=Decimal("3.75"))  # fmt: skip
    return pw.route((provider, MODEL, 0))


def _session_cost(world, fake, ledger, alias: str, secret: str) -> tuple[Decimal, list]:
    fake.state.reset()  # an empty provider cache for each run, as in replay_savings
    pw.wait_for_config(world.url, secret, alias)
    rows = []
    for _ingress, body in replay_savings.claude_code_recorded():
        body["model"] = alias
        response = httpx.post(f"{world.url}/v1/messages", json=body, timeout=60,
                              headers={"x-api-key": secret, "anthropic-version": "2023-06-01"})  # fmt: skip
        assert response.status_code == 200, response.text
        rows.append(ledger(response.headers["request-id"]))
    return sum((row.cost_usd for row in rows), Decimal(0)), rows


def test_every_layer_halves_the_recorded_claude_code_sessions_cost_through_the_server(world, committed, ledger,
                                                                                      caching_fake):  # fmt: skip
    alias = _route(world, caching_fake)
    plain, plain_rows = _session_cost(world, caching_fake, ledger, alias, key_with())
    reduced, reduced_rows = _session_cost(world, caching_fake, ledger, alias, key_with(**ALL))
    assert len(plain_rows) == len(reduced_rows) == 11
    assert all(r.outcome == "ok" and not r.reductions for r in plain_rows)
    assert all("tools" in r.reductions.split(",") and r.tokens_saved > 0 for r in reduced_rows)
    assert sum(r.cache_read_tokens for r in plain_rows) > 0  # Claude Code's own breakpoints are read back
    assert reduced <= plain / 2, (plain, reduced)
    assert sum((r.saved_usd for r in reduced_rows), Decimal(0)) > 0
