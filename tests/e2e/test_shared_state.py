"""State shared across gateway processes through Redis, and what happens when Redis goes away.

These tests always use a real Redis (the machine's, on a database of their own, or a throwaway redis-server they
start and kill), whatever backend the rest of the suite runs on: two gateway processes share one database and
one Redis exactly as two web containers behind a load balancer would.
"""

import shutil
import signal
import subprocess
import time
import uuid
from decimal import Decimal

import httpx
import pytest
import redis
from django.test import override_settings

from tests.conftest import free_port, start_gateway, stop_gateway
from tests.e2e import policy_world as pw

SHARED_REDIS = "redis://127.0.0.1:6379/12"


@pytest.fixture(scope="module")
def pair(world, tmp_path_factory):
    """Two gateway processes on one database and one Redis. Their caches are trusted for 60 s, so anything that
    reaches both sooner travelled through Redis."""
    redis.Redis.from_url(SHARED_REDIS).flushdb()
    env = {
        "REDIS_URL": SHARED_REDIS,
        "GATEWAY_CACHE_TTL": "60",
        "GATEWAY_BREAKER_THRESHOLD": "2",
        "GATEWAY_BREAKER_COOLDOWN_SECONDS": "30",
        "GATEWAY_BREAKER_SYNC_SECONDS": "0.2",
    }
    servers = [start_gateway(env, tmp_dir=tmp_path_factory.mktemp(f"shared{i}")) for i in range(2)]
    yield servers
    for server in servers:
        stop_gateway(server)


def _config(world, **route_fields):
    """A route and a key, announced to the servers through Redis as the admin would (its process has REDIS_URL)."""
    with override_settings(REDIS_URL=SHARED_REDIS):
        alias = pw.route((pw.provider(world.fake), "fake-gpt", 0), **route_fields)
        return alias


def _wait_everywhere(servers, secret, alias):
    for server in servers:
        pw.wait_for_config(server.url, secret, alias, timeout=3)


def test_a_keys_rpm_holds_across_two_processes(world, pair, committed):
    with override_settings(REDIS_URL=SHARED_REDIS):
        alias = _config(world)
        secret = pw.key(pw.project(), rpm_limit=4)
    _wait_everywhere(pair, secret, alias)
    statuses = [pw.openai_chat(server.url, secret, alias).status_code for server in pair * 2]
    assert statuses == [200, 200, 200, 200]
    assert [pw.openai_chat(server.url, secret, alias).status_code for server in pair] == [429, 429]


def test_a_breaker_opened_through_one_process_is_seen_by_the_other(world, pair, committed):
    with override_settings(REDIS_URL=SHARED_REDIS):
        alias = _config(world, retry_max_attempts=1, on_all_open="fail_fast")  # the open breaker answers itself
        secret = pw.key(pw.project())
    _wait_everywhere(pair, secret, alias)
    first, second = pair
    for _ in range(2):
        assert pw.openai_chat(first.url, secret, alias, "FAIL: 503").status_code == 503
    time.sleep(0.3)  # the other process's breaker view is at most GATEWAY_BREAKER_SYNC_SECONDS old
    marker = f"SAY: unseen-{uuid.uuid4().hex[:6]}"
    refused = pw.openai_chat(second.url, secret, alias, marker)
    assert refused.status_code == 503 and "cooling down" in refused.json()["error"]["message"]
    assert not any(marker in str(r.get("body")) for r in world.fake.requests)


def _panics(server) -> float:
    text = httpx.get(server.url + "/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("gateway_breaker_panic_total{"))  # fmt: skip


def test_a_panic_answer_through_one_process_closes_the_breaker_for_both(world, pair, committed):
    """Panic routing (the default): the breaker opened through the first process does not refuse the second's
    request; that request's answer closes the breaker in Redis, so the first process sends normally again."""
    with override_settings(REDIS_URL=SHARED_REDIS):
        alias = _config(world, retry_max_attempts=1)
        secret = pw.key(pw.project())
    _wait_everywhere(pair, secret, alias)
    first, second = pair
    for _ in range(2):
        assert pw.openai_chat(first.url, secret, alias, "FAIL: 503").status_code == 503
    time.sleep(0.3)
    before = _panics(second), _panics(first)
    assert pw.openai_chat(second.url, secret, alias, "SAY: through").json()["choices"][0]["message"]["content"] == "through"
    assert _panics(second) == before[0] + 1  # sent although its breaker was open
    time.sleep(0.3)
    assert pw.openai_chat(first.url, secret, alias, "SAY: again").status_code == 200
    assert _panics(first) == before[1]  # the first process saw it closed: a normal call


def test_a_revoked_key_is_refused_by_both_processes_within_a_second(world, pair, committed):
    from accounts.keys import key_revoke
    from accounts.models import ApiKey

    with override_settings(REDIS_URL=SHARED_REDIS):
        alias = _config(world)
        secret = pw.key(pw.project())
    _wait_everywhere(pair, secret, alias)
    for server in pair:  # both processes now hold the key in their cache, trusted for 60 s
        assert pw.openai_chat(server.url, secret, alias).status_code == 200
    with override_settings(REDIS_URL=SHARED_REDIS):
        key_revoke(ApiKey.objects.get(prefix=secret[:11]))
    revoked_at = time.monotonic()
    pending = set(range(len(pair)))
    while pending and time.monotonic() - revoked_at < 3:
        for i in list(pending):
            if pw.openai_chat(pair[i].url, secret, alias).status_code == 401:
                pending.discard(i)
        time.sleep(0.05)
    assert not pending, "a process still accepted the revoked key"
    assert time.monotonic() - revoked_at < 1.0


def test_a_budget_redis_lost_is_rebuilt_from_the_ledger(world, pair, committed, ledger):
    with override_settings(REDIS_URL=SHARED_REDIS):
        model = pw.unique("budget-model")
        pw.price(model, "100", "100")
        alias = pw.route((pw.provider(world.fake), model, 0))
        secret = pw.key(pw.project(monthly_budget_usd=Decimal("0.01")))
    _wait_everywhere(pair, secret, alias)
    text = "USAGE: in=30 out=30\nSAY: ok"  # $0.006: a second one does not fit $0.01
    spent = pw.openai_chat(pair[0].url, secret, alias, text, max_tokens=20)
    assert spent.status_code == 200
    ledger(spent.headers["x-request-id"])
    time.sleep(0.3)  # settled in the background
    redis.Redis.from_url(SHARED_REDIS).flushdb()  # Redis loses every counter
    refused = pw.openai_chat(pair[1].url, secret, alias, text, max_tokens=20)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "insufficient_quota"


@pytest.fixture
def throwaway_redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (the CI script installs it)")
    port = free_port()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(tmp_path)]  # fmt: skip
    holder = {"process": None}

    def start():
        holder["process"] = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=port).ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("throwaway redis did not start")

    def kill():
        holder["process"].send_signal(signal.SIGKILL)
        holder["process"].wait()

    start()
    yield f"redis://127.0.0.1:{port}/0", start, kill
    if holder["process"].poll() is None:
        kill()


def test_the_gateway_keeps_serving_when_redis_dies_and_comes_back(world, committed, throwaway_redis, tmp_path):
    url, restart, kill = throwaway_redis
    server = start_gateway({"REDIS_URL": url, "GATEWAY_REDIS_RETRY_SECONDS": "0.5"}, tmp_dir=tmp_path)
    try:
        alias = pw.route((pw.provider(world.fake), "fake-gpt", 0))
        secret = pw.key(pw.project(), rpm_limit=1000)
        pw.wait_for_config(server.url, secret, alias)
        assert pw.openai_chat(server.url, secret, alias).status_code == 200
        assert httpx.get(server.url + "/ready").json()["checks"]["redis"] == "ok"
        kill()
        statuses = [pw.openai_chat(server.url, secret, alias).status_code for _ in range(20)]
        assert statuses == [200] * 20  # limits now per process, requests still served
        ready = httpx.get(server.url + "/ready")
        assert ready.status_code == 200 and ready.json()["checks"]["redis"] == "degraded"
        warnings = [line for line in server.log().splitlines() if "Redis is unreachable" in line]
        assert len(warnings) == 1, warnings  # one warning per outage, not one per request
        restart()
        deadline = time.monotonic() + 5
        while httpx.get(server.url + "/ready").json()["checks"]["redis"] != "ok":
            assert time.monotonic() < deadline, "never went back to Redis"
            pw.openai_chat(server.url, secret, alias)  # a request is what tries Redis again
            time.sleep(0.2)
        assert pw.openai_chat(server.url, secret, alias).headers["x-ratelimit-limit-requests"] == "1000"
    finally:
        stop_gateway(server)


def test_fail_closed_refuses_limited_requests_while_redis_is_down(world, committed, throwaway_redis, tmp_path):
    url, _, kill = throwaway_redis
    server = start_gateway({"REDIS_URL": url, "GATEWAY_POLICY_FAIL_CLOSED": "true"}, tmp_dir=tmp_path)
    try:
        alias = pw.route((pw.provider(world.fake), "fake-gpt", 0))
        limited, unlimited = pw.key(pw.project(), rpm_limit=100), pw.key(pw.project())
        pw.wait_for_config(server.url, limited, alias)
        kill()
        refused = pw.openai_chat(server.url, limited, alias)
        assert refused.status_code == 503 and "policy store" in refused.json()["error"]["message"]
        anthropic_style = pw.anthropic_chat(server.url, limited, alias)
        assert anthropic_style.status_code == 529 and anthropic_style.json()["error"]["type"] == "overloaded_error"
        assert pw.openai_chat(server.url, unlimited, alias).status_code == 200  # nothing to check: served
    finally:
        stop_gateway(server)
