"""Retries, failover, circuit breakers and selection strategies, through a real server with breakers on and
against the scripted fake upstream (the only fake part)."""

import re
import threading
import time
import uuid
from collections import Counter

import httpx
import pytest

from tests.conftest import start_gateway, stop_gateway
from tests.e2e import policy_world as pw

BREAKER_ENV = {
    "GATEWAY_BREAKER_THRESHOLD": "3",
    "GATEWAY_BREAKER_WINDOW_SECONDS": "30",
    "GATEWAY_BREAKER_COOLDOWN_SECONDS": "2",
    "GATEWAY_BREAKER_SYNC_SECONDS": "0.2",
    "GATEWAY_RETRY_BASE_MS": "20",
}


@pytest.fixture(scope="module")
def server(world, django_db_blocker, tmp_path_factory):
    running = start_gateway(BREAKER_ENV, tmp_dir=tmp_path_factory.mktemp("breakers"))
    yield running
    stop_gateway(running)


def _fake_hits(world, marker: str) -> int:
    return sum(marker in str(r.get("body")) for r in world.fake.requests)


def test_a_refused_credential_fails_over_to_the_next_account_and_is_marked(world, server, committed, ledger):
    from accounts.models import ProviderAccount

    alias, secret, prov = pw.served_route(server.url, world.fake, ("bad", "sk-wrong-key", 0, 1), ("good", None, 1, 1))
    first = pw.openai_chat(server.url, secret, alias, "SAY: served")
    assert first.status_code == 200 and first.json()["choices"][0]["message"]["content"] == "served"
    row = ledger(first.headers["x-request-id"])
    assert (row.attempts, row.account) == (2, "good")
    bad = ProviderAccount.objects.get(provider=prov, name="bad")
    deadline = time.monotonic() + 5
    while not bad.last_error and time.monotonic() < deadline:
        time.sleep(0.1)
        bad.refresh_from_db()
    assert "refused this credential" in bad.last_error
    # The bad account now cools down: the next request goes straight to the good one.
    second = pw.openai_chat(server.url, secret, alias)
    assert ledger(second.headers["x-request-id"]).attempts == 1


def test_when_every_credential_is_refused_the_client_is_not_told_its_key_is_bad(world, server, committed):
    alias, secret, _ = pw.served_route(server.url, world.fake, ("bad", "sk-wrong-key", 0, 1), kind="anthropic",
                                       model="fake-claude")
    response = pw.anthropic_chat(server.url, secret, alias)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "api_error" and "refused the gateway's credential" in error["message"]
    openai_style = pw.openai_chat(server.url, secret, alias)
    assert openai_style.status_code in (502, 503) and openai_style.json()["error"]["code"] != "invalid_api_key"


def test_connection_refused_is_reported_as_such(world, server, committed):
    alias, secret, _ = pw.served_route(server.url, world.fake, base_url="http://127.0.0.1:9/v1",
                                       route_fields={"retry_max_attempts": 1})
    response = pw.openai_chat(server.url, secret, alias)
    assert response.status_code == 502
    assert "could not connect" in response.json()["error"]["message"]


@pytest.mark.parametrize("failure", ["503", "529", "500", "truncate"], ids=lambda f: f"first-{f}")
def test_a_failed_first_attempt_is_retried_on_the_same_account(world, server, committed, ledger, failure):
    """5xx and 529 statuses, and an answer cut mid-body (still before the client saw a byte), are retried."""
    alias, secret, _ = pw.served_route(server.url, world.fake)
    tag = uuid.uuid4().hex[:8]
    response = pw.openai_chat(server.url, secret, alias, f"FAIL_FIRST: {failure} {tag}\nSAY: second")
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == "second"
    assert ledger(response.headers["x-request-id"]).attempts == 2


def test_an_upstream_429_is_retried_after_its_retry_after(world, server, committed, ledger):
    alias, secret, _ = pw.served_route(server.url, world.fake)
    tag = uuid.uuid4().hex[:8]
    started = time.monotonic()
    response = pw.openai_chat(server.url, secret, alias, f"FAIL_FIRST: 429 {tag}\nSAY: waited")
    assert response.status_code == 200
    assert time.monotonic() - started >= 1.0  # the fake's retry-after is 1 s
    assert ledger(response.headers["x-request-id"]).attempts == 2


def test_a_hung_account_times_out_and_the_request_fails_over(world, server, committed, ledger):
    alias, secret, _ = pw.served_route(server.url, world.fake, ("hung", None, 0, 1), ("spare", None, 1, 1),
                                       read_timeout=1.0)
    tag = uuid.uuid4().hex[:8]
    started = time.monotonic()
    response = pw.openai_chat(server.url, secret, alias, f"FAIL_FIRST: timeout {tag}\nSAY: rescued")
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == "rescued"
    assert time.monotonic() - started < 5
    row = ledger(response.headers["x-request-id"])
    assert (row.attempts, row.account) == (2, "spare")


def test_the_breaker_opens_after_the_threshold_then_probes_and_closes(world, server, committed, ledger):
    route = {"retry_max_attempts": 1, "on_all_open": "fail_fast"}  # the open breaker answers (panic: tests/e2e/test_never_worse.py)
    alias, secret, prov = pw.served_route(server.url, world.fake, route_fields=route)
    for _ in range(3):
        assert pw.openai_chat(server.url, secret, alias, "FAIL: 500").status_code == 500
    marker = f"SAY: skipped-{uuid.uuid4().hex[:6]}"
    refused = pw.openai_chat(server.url, secret, alias, marker)
    assert refused.status_code == 503 and "cooling down" in refused.json()["error"]["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 3
    assert _fake_hits(world, marker) == 0  # refused without waiting on the failing upstream
    metrics = httpx.get(server.url + "/metrics").text
    assert re.search(rf'gateway_circuit_state{{account="main",provider="{prov.name}"}} 2\.0', metrics), metrics[-2000:]
    time.sleep(2.2)  # the cool-off: the breaker is half-open and lets one probe through
    probe = pw.openai_chat(server.url, secret, alias, "SAY: probe")
    assert probe.status_code == 200
    time.sleep(0.3)
    assert pw.openai_chat(server.url, secret, alias, "SAY: closed").status_code == 200
    assert pw.openai_chat(server.url, secret, alias, "FAIL: 500").status_code == 500  # one failure: still closed
    assert pw.openai_chat(server.url, secret, alias).status_code == 200


def admin_session(url: str) -> httpx.Client:
    """A logged-in staff session on the real server's admin."""
    from django.contrib.auth.models import User

    name = pw.unique("admin")
    User.objects.create_superuser(name, f"{name}@example.com", "pw-for-tests-only")
    client = httpx.Client(base_url=url, timeout=10)
    client.get("/admin/login/")
    login = client.post(
        "/admin/login/?next=/admin/",
        data={"username": name, "password": "pw-for-tests-only", "csrfmiddlewaretoken": client.cookies["csrftoken"]},
        headers={"referer": url + "/admin/login/"},
    )
    assert login.status_code in (200, 302) and "sessionid" in client.cookies
    return client


def test_the_admin_shows_breaker_state_and_resets_it(world, server, committed):
    route = {"retry_max_attempts": 1, "on_all_open": "fail_fast"}
    alias, secret, prov = pw.served_route(server.url, world.fake, route_fields=route)
    for _ in range(3):
        pw.openai_chat(server.url, secret, alias, "FAIL: 503")
    assert pw.openai_chat(server.url, secret, alias).status_code == 503
    from accounts.models import ProviderAccount

    account = ProviderAccount.objects.get(provider=prov)
    admin = admin_session(server.url)
    page = admin.get(f"/admin/accounts/provideraccount/?q={prov.name}").text
    assert re.search(r"open\b.*3 failures", page, re.S), page[-3000:]
    reset = admin.post(
        "/admin/accounts/provideraccount/",
        data={"action": "breaker_reset", "_selected_action": [account.id], "csrfmiddlewaretoken": admin.cookies["csrftoken"]},
        headers={"referer": server.url + "/admin/accounts/provideraccount/"},
    )
    assert reset.status_code in (200, 302)
    time.sleep(0.3)  # the server's breaker cache is at most GATEWAY_BREAKER_SYNC_SECONDS (0.2 s) old
    assert pw.openai_chat(server.url, secret, alias).status_code == 200


@pytest.mark.parametrize("strategy", ["round_robin", "least_busy", "weighted", "priority"])
def test_selection_strategies(world, server, committed, ledger, strategy):
    alias, secret, _ = pw.served_route(server.url, world.fake, ("a", None, 0, 1), ("b", None, 1, 3),
                                       route_fields={"strategy": strategy})
    if strategy == "least_busy":
        slow = threading.Thread(target=pw.openai_chat, args=(server.url, secret, alias, "SLOW: 1200\nSAY: slow"))
        slow.start()
        time.sleep(0.4)
        quick = pw.openai_chat(server.url, secret, alias)
        slow.join()
        assert ledger(quick.headers["x-request-id"]).account == "b"  # "a" (first by priority) is busy
        return
    draws = 40 if strategy == "weighted" else 8
    accounts = [ledger(pw.openai_chat(server.url, secret, alias).headers["x-request-id"]).account for _ in range(draws)]
    counts = Counter(accounts)
    if strategy == "round_robin":
        assert all(x != y for x, y in zip(accounts, accounts[1:])), accounts
    elif strategy == "weighted":
        assert counts["b"] > counts["a"] > 0, counts  # weights 1:3 (chance of failing this: ~1e-4)
    else:
        assert counts == {"a": 8}
