"""Never worse than going direct: on a route with one account, with the default breaker settings, upstream errors
never turn into errors the gateway makes up. Official SDKs with max_retries=0 against a real server: the error
scenarios run first (they open the account's breaker), then plain requests on every ingress must all succeed,
and every error request gets the upstream's own class. With two accounts the failing one is still skipped."""

import re
import uuid

import anthropic
import httpx
import openai
import pytest

from tests.conftest import start_gateway, stop_gateway
from tests.e2e import policy_world as pw

# The shared test world turns breakers off; here they run with the defaults a user gets (threshold 5 failures in
# 30 s, 30 s cooldown, 300 s after a refused credential), so they stay open through every plain request below.
DEFAULTS = {"GATEWAY_BREAKER_THRESHOLD": "5", "GATEWAY_BREAKER_SYNC_SECONDS": "0.2"}
UPSTREAMS = {"anthropic": "fake-claude", "openai": "fake-gpt"}  # provider kind -> the fake's model id


@pytest.fixture(scope="module")
def server(world, django_db_blocker, tmp_path_factory):
    running = start_gateway(DEFAULTS, tmp_dir=tmp_path_factory.mktemp("never-worse"))
    yield running
    stop_gateway(running)


def _clients(url: str, secret: str, **extra):
    return (anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0, **extra),
            openai.OpenAI(base_url=url + "/v1", api_key=secret, max_retries=0, **extra))  # fmt: skip


def _hits(fake, marker: str) -> int:
    return sum(marker in str(r.get("body")) for r in fake.requests)


def _metric(url: str, name: str, provider: str) -> float:
    found = re.search(rf'{name}{{account="main",provider="{provider}"}} ([0-9.]+)', httpx.get(url + "/metrics").text)
    return float(found.group(1)) if found else 0.0


def _anthropic_error(client, alias: str, script: str) -> anthropic.APIStatusError:
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(model=alias, max_tokens=50, messages=[{"role": "user", "content": script}])
    return caught.value


def _openai_error(client, alias: str, script: str) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=alias, messages=[{"role": "user", "content": script}])
    return caught.value


def _error_scenarios(server, world, alias: str, secret: str, kind: str) -> None:
    """Each upstream failure, asked for by both SDKs, reaches the client as the upstream's own class."""
    claude, gpt = _clients(server.url, secret)
    translated = kind != "openai"  # an OpenAI client on an Anthropic upstream gets errors rendered, not relayed
    for _ in range(2):  # the second round meets an open breaker: on main it got an invented 529/503
        err = _anthropic_error(claude, alias, "FAIL: 429")
        assert err.status_code == 429 and err.body["error"]["type"] == "rate_limit_error", err.body
        assert err.response.headers.get("retry-after")
        err = _openai_error(gpt, alias, "FAIL: 429")
        assert err.status_code == 429 and err.response.headers.get("retry-after"), err.body
        err = _anthropic_error(claude, alias, "FAIL: 529")
        assert err.status_code == 529 and err.body["error"]["type"] == "overloaded_error", err.body
        err = _openai_error(gpt, alias, "FAIL: 529")
        assert err.status_code == (503 if translated else 529) and "cooling down" not in str(err.body), err.body
        err = _anthropic_error(claude, alias, "FAIL: 500")
        assert err.status_code == 500 and err.body["error"]["type"] == "api_error", err.body
        err = _openai_error(gpt, alias, "FAIL: 500")
        assert err.status_code == 500 and "cooling down" not in str(err.body), err.body
        err = _openai_error(gpt, alias, "FAIL: truncate")  # the body cut mid-way, every attempt
        assert err.status_code == 502 and "mid-response" in err.message, err.body
        err = _anthropic_error(claude, alias, "FAIL: 404")  # the upstream's own message, not a guess
        assert err.status_code == 404 and "cooling down" not in err.message, err.body
    with pytest.raises(anthropic.APIStatusError) as caught:  # a stream the upstream breaks after 3 deltas
        with claude.messages.stream(model=alias, max_tokens=50, messages=[{"role": "user", "content": "FAIL: midstream"}]) as s:
            for _ in s:
                pass
    assert "overloaded" in str(caught.value).lower()
    err = _anthropic_error(claude, alias, "FAIL: 401")  # the gateway's credential refused: said so, as a 502
    assert err.status_code == 502 and "refused the gateway's credential" in err.message, err.body


def _plain_requests(server, alias: str, secret: str) -> None:
    claude, gpt = _clients(server.url, secret)
    for stream in (False, True):
        say = f"SAY: direct-{'stream' if stream else 'whole'}"
        if stream:
            with claude.messages.stream(model=alias, max_tokens=50, messages=[{"role": "user", "content": say}]) as s:
                assert s.get_final_message().content[0].text == say[5:]
            parts = gpt.chat.completions.create(model=alias, messages=[{"role": "user", "content": say}], stream=True)
            assert "".join(c.choices[0].delta.content or "" for c in parts if c.choices) == say[5:]
            with gpt.responses.stream(model=alias, input=say) as s:
                assert s.get_final_response().output_text == say[5:]
        else:
            message = claude.messages.create(model=alias, max_tokens=50, messages=[{"role": "user", "content": say}])
            assert message.content[0].text == say[5:]
            chat = gpt.chat.completions.create(model=alias, messages=[{"role": "user", "content": say}])
            assert chat.choices[0].message.content == say[5:]
            assert gpt.responses.create(model=alias, input=say).output_text == say[5:]


@pytest.mark.parametrize("kind", sorted(UPSTREAMS))
def test_one_account_errors_then_every_plain_request_succeeds(world, server, committed, kind):
    alias, secret, prov = pw.served_route(server.url, world.fake, kind=kind, model=UPSTREAMS[kind])
    _error_scenarios(server, world, alias, secret, kind)
    assert _metric(server.url, "gateway_circuit_state", prov.name) == 2.0  # the breaker is open...
    panics = _metric(server.url, "gateway_breaker_panic_total", prov.name)
    _plain_requests(server, alias, secret)
    assert _metric(server.url, "gateway_breaker_panic_total", prov.name) > panics  # ...the request went through...
    assert _metric(server.url, "gateway_circuit_state", prov.name) == 0.0  # ...and its answer closed the breaker


def test_with_two_accounts_the_failing_one_is_still_skipped(world, server, committed):
    refused = "sk-revoked-" + uuid.uuid4().hex[:8]  # the fake refuses this credential with a 401, every time
    alias, secret, prov = pw.served_route(server.url, world.fake, ("main", refused, 0, 1), ("spare", None, 1, 1))
    for _ in range(4):
        assert pw.openai_chat(server.url, secret, alias, "SAY: failover").status_code == 200
    _plain_requests(server, alias, secret)
    tried_main = [r for r in world.fake.requests if refused in str(r.get("headers"))]
    assert len(tried_main) == 1, "the account with the refused credential must be skipped once its breaker is open"


def test_fail_fast_routes_answer_529_without_an_upstream_call(world, server, committed):
    alias, secret, prov = pw.served_route(server.url, world.fake, route_fields={"on_all_open": "fail_fast",
                                                                                "retry_max_attempts": 1})
    for _ in range(5):
        assert pw.openai_chat(server.url, secret, alias, "FAIL: 500").status_code == 500
    marker = f"SAY: skipped-{uuid.uuid4().hex[:6]}"
    refused = pw.anthropic_chat(server.url, secret, alias, marker)
    assert refused.status_code == 529 and "cooling down" in refused.json()["error"]["message"]
    assert int(refused.headers["retry-after"]) >= 1
    assert _hits(world.fake, marker) == 0


def test_a_client_retry_costs_one_call_per_account(world, server, committed):
    """The official SDK numbers its own retries: the gateway adds failover, not a second loop of retries."""
    alias, secret, prov = pw.served_route(server.url, world.fake, kind="anthropic", model="fake-claude")
    marker = f"m-{uuid.uuid4().hex[:8]}"
    claude = anthropic.Anthropic(base_url=server.url, api_key=secret, max_retries=2)  # the SDK's default
    with pytest.raises(anthropic.InternalServerError):
        claude.messages.create(model=alias, max_tokens=50, messages=[{"role": "user", "content": f"FAIL: 500\n{marker}"}])
    assert _hits(world.fake, marker) == 3 + 1 + 1  # 3 calls on the client's first try, 1 on each of its 2 retries
