"""The policy state store (proxy/policies/state.py): the same suite runs against LocalState and RedisState (real
Redis, database 15, a key prefix per test), with an injected clock instead of sleeping. FallbackState runs
against a throw-away redis-server that the tests stop, pause and restart."""

import asyncio
import logging
import shutil
import socket
import subprocess
import threading
import time
import uuid

import pytest
import redis

from proxy.policies.state import Budget, Concurrency, StateUnavailable, Window
from proxy.policies.state_local import LocalState
from proxy.policies.state_redis import RedisState
from proxy.policies.store import FallbackState, get_state, redis_status, reset_for_tests

REDIS_URL = "redis://127.0.0.1:6379/15"
T0 = float(int(time.time()))  # a real clock value: Redis expires keys on its own clock
EXPIRES = int(T0) + 40 * 86400
BKEY = "budget:p:1:m:2026-11"
FAILS = {"threshold": 3, "window_s": 60, "cooldown_s": 30}


def _redis_up(url: str = REDIS_URL) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


class Backend:
    def __init__(self, kind: str, prefix: str):
        self.kind, self.prefix, self._made = kind, prefix, []

    def new(self):
        """Another store: for Redis a separate instance with its own clients, as another process would have."""
        # a generous timeout: these tests are about semantics (a busy CI box may take a while to open 50 connections)
        state = LocalState() if self.kind == "local" else RedisState(REDIS_URL, prefix=self.prefix, timeout=2.0)
        self._made.append(state)
        return state

    def run(self, body):
        async def main():
            try:
                return await body(self.new())
            finally:
                for state in self._made:
                    if isinstance(state, RedisState):
                        await state.aclose()

        return asyncio.run(main())


@pytest.fixture(params=["local", "redis"])
def backend(request):
    yield from _backend(request.param)


@pytest.fixture
def redis_backend():
    yield from _backend("redis")


def _backend(kind: str):
    if kind == "redis" and not _redis_up():
        pytest.fail("no Redis at 127.0.0.1:6379 (every developer and CI machine runs one)")
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    yield Backend(kind, prefix)
    if kind == "redis":
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def admit(state, rid, windows=(), concurrency=(), budgets=(), breakers=(), at=0.0):
    return state.admit(rid, list(windows), list(concurrency), list(budgets), list(breakers), now=T0 + at)


def settle(state, rid, admission, at, costs=None, spent=None, recovered=()):
    return state.settle(rid, admission, actual_costs=costs or {}, budget_actuals=spent or {},
                        breaker_success=list(recovered), now=T0 + at)


def budget(reserve: int, limit: int = 1000) -> Budget:
    return Budget(BKEY, limit, reserve, EXPIRES)


async def used(state, key, window_s=60, at=0.0) -> int:
    """Units in a window, read with a zero-cost admission."""
    a = await admit(state, f"read-{uuid.uuid4().hex}", [Window(key, 10**9, 0, window_s)], at=at)
    return 10**9 - a.windows[key].remaining


async def total(state, at=0.0) -> int:
    a = await admit(state, f"read-{uuid.uuid4().hex}", budgets=[budget(0, 10**12)], at=at)
    return a.budgets[BKEY]


# --- windows ------------------------------------------------------------------------------------------------


def test_window_admits_up_to_the_limit_then_refuses_until_the_oldest_units_leave(backend):
    async def body(state):
        w = Window("rpm:k:1", 3, 1)
        for i, at in enumerate((0.5, 10, 20)):
            a = await admit(state, f"r{i}", [w], at=at)
            assert a.admitted and a.refused_by is None
            assert a.windows["rpm:k:1"].remaining == 2 - i
            assert a.windows["rpm:k:1"].reset_s == pytest.approx(60 - at)  # the units of second T0 leave first
        a = await admit(state, "r3", [w], at=25)
        assert not a.admitted and a.refused_by == "rpm:k:1" and a.ticket is None
        assert a.retry_after == pytest.approx(35.0)  # the units of second T0 leave at T0 + 60
        assert a.windows["rpm:k:1"].remaining == 0 and a.windows["rpm:k:1"].limit == 3

    backend.run(body)


def test_window_slides_one_second_at_a_time(backend):
    async def body(state):
        w = Window("rpm:k:1", 2, 1)
        assert (await admit(state, "a", [w], at=0)).admitted
        assert (await admit(state, "b", [w], at=30)).admitted
        late = await admit(state, "c", [w], at=59.9)
        assert not late.admitted and late.retry_after == pytest.approx(0.1)
        assert (await admit(state, "c", [w], at=60)).admitted  # t=0 left; t=30 and t=60 are in
        refused = await admit(state, "d", [w], at=89)
        assert not refused.admitted and refused.retry_after == pytest.approx(1.0)
        assert (await admit(state, "d", [w], at=90)).admitted

    backend.run(body)


def test_token_window_retry_after_counts_the_units_that_must_leave(backend):
    async def body(state):
        def w(cost):
            return Window("tpm:k:1", 100, cost)

        assert (await admit(state, "a", [w(60)], at=0)).admitted
        assert (await admit(state, "b", [w(30)], at=10)).admitted
        refused = await admit(state, "c", [w(50)], at=20)
        assert not refused.admitted and refused.retry_after == pytest.approx(40.0)  # the 60 of t=0 must go
        assert (await admit(state, "c", [w(10)], at=20)).windows["tpm:k:1"].remaining == 0
        too_big = await admit(state, "d", [w(120)], at=21)
        assert too_big.refused_by == "tpm:k:1" and too_big.retry_after == 60.0

    backend.run(body)


def test_long_windows_use_coarser_buckets(backend):
    async def body(state):
        w = Window("rpd:k:1", 2, 1, 86400)  # 288-second buckets
        assert (await admit(state, "a", [w], at=0)).admitted
        assert (await admit(state, "b", [w], at=1000)).admitted
        refused = await admit(state, "c", [w], at=2000)
        assert not refused.admitted
        assert 86400 - 2000 - 288 < refused.retry_after <= 86400 - 2000
        assert (await admit(state, "c", [w], at=2000 + refused.retry_after)).admitted

    backend.run(body)


def test_admission_is_all_or_nothing(backend):
    async def body(state):
        tpm, rpm, conc = Window("tpm:k:1", 100, 40), Window("rpm:k:1", 1, 1), Concurrency("conc:k:1", 1)
        assert (await admit(state, "r1", [rpm], at=0)).admitted
        refused = await admit(state, "r2", [tpm, rpm], [conc], at=1)
        assert refused.refused_by == "rpm:k:1" and refused.windows["tpm:k:1"].remaining == 100
        # nothing of r2 was taken: the whole TPM window and the only lease are still free
        assert (await admit(state, "r3", [Window("tpm:k:1", 100, 100)], [conc], at=2)).admitted

        await state.seed_budget(BKEY, 0, EXPIRES)
        refused = await admit(state, "r4", [Window("tpm:k:2", 100, 50)], [Concurrency("conc:k:2", 1)],
                              [budget(11, limit=10)], at=3)
        assert refused.refused_by == BKEY and refused.retry_after == pytest.approx(EXPIRES - T0 - 3)
        assert (await admit(state, "r5", [Window("tpm:k:2", 100, 100)], [Concurrency("conc:k:2", 1)], at=4)).admitted

    backend.run(body)


def test_settle_corrects_the_token_window_up_and_down_once(backend):
    async def body(state):
        w = Window("tpm:k:1", 1000, 100)
        a1 = await admit(state, "r1", [w], at=0)
        await settle(state, "r1", a1, at=1, costs={"tpm:k:1": 300})
        assert await used(state, "tpm:k:1", at=2) == 300
        a2 = await admit(state, "r2", [w], at=3)
        await settle(state, "r2", a2, at=4, costs={"tpm:k:1": 20})
        assert await used(state, "tpm:k:1", at=5) == 320
        await settle(state, "r2", a2, at=6, costs={"tpm:k:1": 900})  # a second settle changes nothing
        assert await used(state, "tpm:k:1", at=7) == 320
        a3 = await admit(state, "r3", [w], at=10)
        await settle(state, "r3", a3, at=71, costs={"tpm:k:1": 900})  # its bucket has left the window
        assert await used(state, "tpm:k:1", at=71) == 0

    backend.run(body)


# --- concurrency --------------------------------------------------------------------------------------------


def test_concurrency_leases_are_released_by_settle_or_expire(backend):
    async def body(state):
        c = Concurrency("conc:k:1", 2, lease_s=100)
        a1 = await admit(state, "r1", concurrency=[c], at=0)
        assert a1.admitted and (await admit(state, "r2", concurrency=[c], at=0)).admitted
        refused = await admit(state, "r3", concurrency=[c], at=1)
        assert refused.refused_by == "conc:k:1" and refused.retry_after == 1.0
        await settle(state, "r1", a1, at=2)
        assert (await admit(state, "r3", concurrency=[c], at=3)).admitted
        assert not (await admit(state, "r4", concurrency=[c], at=4)).admitted
        assert (await admit(state, "r4", concurrency=[c], at=100)).admitted  # r2 never settled: its lease expired

    backend.run(body)


# --- budgets ------------------------------------------------------------------------------------------------


def test_budget_reserves_then_books_the_actual_cost_once(backend):
    async def body(state):
        await state.seed_budget(BKEY, 100, EXPIRES)
        a1 = await admit(state, "r1", budgets=[budget(500)], at=0)
        assert a1.admitted and a1.budgets == {BKEY: 600}
        refused = await admit(state, "r2", budgets=[budget(500)], at=1)
        assert refused.refused_by == BKEY and refused.budgets == {BKEY: 600}
        assert refused.retry_after == pytest.approx(EXPIRES - T0 - 1)
        await settle(state, "r1", a1, at=2, spent={BKEY: 200})
        a2 = await admit(state, "r2", budgets=[budget(500)], at=3)
        assert a2.admitted and a2.budgets == {BKEY: 800}
        await settle(state, "r2", a2, at=4)  # failed: no actual cost, the reservation is released
        assert await total(state, at=5) == 300
        await settle(state, "r1", a1, at=6, spent={BKEY: 999})  # a second settle changes nothing
        await state.seed_budget(BKEY, 5000, EXPIRES)  # seeding never overwrites a running total
        assert await total(state, at=7) == 300

    backend.run(body)


def test_a_crashed_requests_reservation_is_released_later_but_its_late_settle_still_counts(backend):
    async def body(state):
        await state.seed_budget(BKEY, 0, EXPIRES)
        a1 = await admit(state, "r1", budgets=[budget(900)], at=0)
        assert not (await admit(state, "r2", budgets=[budget(200)], at=100)).admitted
        a2 = await admit(state, "r2", budgets=[budget(200)], at=901)
        assert a2.admitted and a2.budgets == {BKEY: 200}
        await settle(state, "r1", a1, at=950, spent={BKEY: 50})
        assert await total(state, at=951) == 250
        await settle(state, "r2", a2, at=952, spent={BKEY: 100})
        assert await total(state, at=953) == 150

    backend.run(body)


def test_unseeded_budget_admits_nothing_until_seeded(backend):
    async def body(state):
        w = Window("rpm:k:1", 10, 1)
        a = await admit(state, "r1", [w], budgets=[budget(10)], at=0)
        assert (a.admitted, a.refused_by, a.unseeded, a.budgets, a.ticket) == (False, None, [BKEY], {}, None)
        assert a.windows["rpm:k:1"].remaining == 10
        await state.seed_budget(BKEY, 40, EXPIRES)
        a = await admit(state, "r1", [w], budgets=[budget(10)], at=1)
        assert a.admitted and a.unseeded == [] and a.budgets == {BKEY: 50} and a.windows["rpm:k:1"].remaining == 9

    backend.run(body)


def test_fifty_concurrent_admissions_get_exactly_the_ten_reservations_that_fit(backend):
    async def body(state):
        await state.seed_budget(BKEY, 0, EXPIRES)
        stores = [state, backend.new() if backend.kind == "redis" else state]  # two processes' clients
        results = await asyncio.gather(
            *(admit(stores[i % 2], f"r{i}", budgets=[budget(100)], at=i / 100) for i in range(50))
        )
        assert sum(a.admitted for a in results) == 10
        assert {a.refused_by for a in results if not a.admitted} == {BKEY}
        assert await total(state, at=1) == 1000

    backend.run(body)


def test_local_state_is_safe_across_threads():
    state = LocalState()
    asyncio.run(state.seed_budget(BKEY, 0, EXPIRES))
    results = []

    def worker(n):
        async def run():
            return [await admit(state, f"t{n}-{i}", budgets=[budget(100)], at=0) for i in range(10)]

        results.extend(asyncio.run(run()))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(a.admitted for a in results) == 10


# --- breakers -----------------------------------------------------------------------------------------------


def test_breaker_opens_goes_half_open_lets_one_probe_through_and_closes_on_success(backend):
    async def body(state):
        assert (await state.breaker_failure(1, **FAILS, now=T0)).state == "closed"
        s = await state.breaker_failure(1, **FAILS, now=T0 + 1)
        assert (s.state, s.failures) == ("closed", 2)
        s = await state.breaker_failure(1, **FAILS, now=T0 + 2)
        assert (s.state, s.failures, s.open_until, s.reason) == ("open", 3, T0 + 32, "failures")
        a = await admit(state, "r1", breakers=[1, 2], at=10)  # read in the admission round trip
        assert a.admitted and a.breakers[1].state == "open" and a.breakers[2].state == "closed"
        assert not await state.breaker_claim_probe(1, 10, now=T0 + 10)
        states = await state.breaker_states([1, 2], now=T0 + 32)
        assert states[1].state == "half_open" and states[1].reason == "failures" and states[2].state == "closed"
        assert await state.breaker_claim_probe(1, 10, now=T0 + 32)
        assert not await state.breaker_claim_probe(1, 10, now=T0 + 33)
        await settle(state, "probe", a, at=34, recovered=[1])
        s = (await state.breaker_states([1], now=T0 + 34))[1]
        assert (s.state, s.failures, s.open_until, s.reason) == ("closed", 0, 0.0, "")
        assert await state.breaker_claim_probe(1, 10, now=T0 + 35)  # closed: everyone passes

    backend.run(body)


def test_a_failed_probe_reopens_at_once_and_an_expired_probe_can_be_claimed_again(backend):
    async def body(state):
        for at in (0, 1, 2):
            await state.breaker_failure(1, **FAILS, now=T0 + at)
        assert await state.breaker_claim_probe(1, 5, now=T0 + 40)
        assert not await state.breaker_claim_probe(1, 5, now=T0 + 44)
        assert await state.breaker_claim_probe(1, 5, now=T0 + 46)  # the first probe never reported back
        s = await state.breaker_failure(1, **FAILS, now=T0 + 47)
        assert (s.state, s.open_until) == ("open", T0 + 77)
        assert not await state.breaker_claim_probe(1, 5, now=T0 + 50)
        assert await state.breaker_claim_probe(1, 5, now=T0 + 77)

    backend.run(body)


def test_failures_spread_wider_than_the_window_keep_the_breaker_closed(backend):
    async def body(state):
        for at in (0, 40, 80):
            s = await state.breaker_failure(1, **FAILS, now=T0 + at)
        assert (s.state, s.failures) == ("closed", 2)
        assert (await state.breaker_states([1], now=T0 + 200))[1].failures == 0

    backend.run(body)


def test_cooldown_opens_for_its_time_and_is_never_shortened(backend):
    async def body(state):
        s = await state.breaker_cooldown(5, 20, "retry-after", now=T0)
        assert (s.state, s.open_until, s.reason) == ("open", T0 + 20, "retry-after")
        assert (await state.breaker_cooldown(5, 5, "retry-after", now=T0 + 1)).open_until == T0 + 20
        s = await state.breaker_cooldown(5, 100, "auth", now=T0 + 2)
        assert (s.open_until, s.reason) == (T0 + 102, "auth")
        await state.breaker_success(5, now=T0 + 3)  # a request that began before the cooldown: stays open
        assert (await state.breaker_states([5], now=T0 + 3))[5].state == "open"
        s = (await state.breaker_states([5], now=T0 + 102))[5]
        assert (s.state, s.reason) == ("half_open", "auth")

    backend.run(body)


def test_reset_clears_the_breaker(backend):
    async def body(state):
        for at in (0, 1, 2):
            await state.breaker_failure(7, **FAILS, now=T0 + at)
        await state.breaker_reset(7)
        s = (await state.breaker_states([7], now=T0 + 3))[7]
        assert (s.state, s.failures) == ("closed", 0)
        assert (await state.breaker_failure(7, **FAILS, now=T0 + 4)).failures == 1

    backend.run(body)


def test_every_redis_key_has_a_ttl(redis_backend):
    backend = redis_backend

    async def body(state):
        await state.seed_budget(BKEY, 0, EXPIRES)
        a = await admit(state, "r1", [Window("tpm:k:1", 100, 10)], [Concurrency("conc:k:1", 2)], [budget(5)], at=0)
        await admit(state, "r2", [Window("tpm:k:1", 100, 10)], [Concurrency("conc:k:1", 2)], [budget(5)], at=0)
        await settle(state, "r1", a, at=1, costs={"tpm:k:1": 20}, spent={BKEY: 3}, recovered=[1])
        await state.breaker_failure(2, **FAILS, now=T0)
        await state.breaker_cooldown(3, 10, "auth", now=T0)
        await state.breaker_claim_probe(3, 5, now=T0 + 11)

    backend.run(body)
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=backend.prefix + "*"))
    assert len(keys) >= 8
    assert all(client.ttl(k) > 0 for k in keys), {k: client.ttl(k) for k in keys}
    client.close()


# --- degradation --------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_redis(port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not _redis_up(f"redis://127.0.0.1:{port}/0"):
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise RuntimeError("throw-away redis-server did not start")
        time.sleep(0.02)
    return server


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.kill()
        server.wait()


@pytest.fixture
def throwaway_redis(settings):
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server binary")
    port = _free_port()
    servers = [_start_redis(port)]
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    settings.GATEWAY_REDIS_RETRY_SECONDS = 0.2
    settings.GATEWAY_REDIS_TIMEOUT = 0.25  # the stalled-Redis test pauses it for 0.6 s
    settings.GATEWAY_POLICY_FAIL_CLOSED = False
    reset_for_tests()
    yield port, servers
    reset_for_tests()
    for server in servers:
        _stop(server)


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "proxy.policies.store" and r.levelno == logging.WARNING]


def test_without_redis_url_the_store_is_local(settings):
    settings.REDIS_URL = ""
    reset_for_tests()
    assert isinstance(get_state(), LocalState) and redis_status() == "off"
    reset_for_tests()


def test_fallback_serves_from_local_state_while_redis_is_down_then_recovers(throwaway_redis, settings, caplog):
    port, servers = throwaway_redis
    caplog.set_level(logging.WARNING, logger="proxy.policies.store")
    w = Window("rpm:k:1", 100, 1)
    in_flight = []

    async def before():
        state = get_state()
        assert isinstance(state, FallbackState) and redis_status() == "ok"
        await state.seed_budget(BKEY, 100, EXPIRES)
        in_flight.append(await admit(state, "r0", [w], budgets=[budget(10)], at=0))
        assert in_flight[0].admitted
        await state.aclose()

    async def down():
        state = get_state()
        a = await admit(state, "r1", [w], budgets=[budget(10)], at=1)
        assert a.unseeded == [BKEY]  # the local store starts without totals: the caller seeds it from the ledger
        await state.seed_budget(BKEY, 100, EXPIRES)
        a = await admit(state, "r1", [w], budgets=[budget(10)], at=2)
        assert a.admitted and a.budgets == {BKEY: 110}
        await settle(state, "r1", a, at=3, spent={BKEY: 7})
        for i in range(5):
            assert (await admit(state, f"r{i + 2}", [w], at=4)).admitted
        await settle(state, "r0", in_flight[0], at=4, spent={BKEY: 9}, recovered=[1])  # admitted by Redis
        assert (await state.breaker_failure(1, **FAILS, now=T0 + 4)).failures == 1
        assert redis_status() == "degraded"
        settings.GATEWAY_POLICY_FAIL_CLOSED = True
        with pytest.raises(StateUnavailable):
            await admit(state, "r9", [w], at=5)
        settings.GATEWAY_POLICY_FAIL_CLOSED = False
        await state.aclose()

    async def after():
        state = get_state()
        a = await admit(state, "r10", [w], at=6)
        assert a.admitted and redis_status() == "ok"
        assert a.windows["rpm:k:1"].remaining == 99  # Redis's count (restarted empty), not the local one
        await state.aclose()

    asyncio.run(before())
    _stop(servers[0])
    asyncio.run(down())
    assert len(_warnings(caplog)) == 1
    servers.append(_start_redis(port))
    time.sleep(0.25)  # the retry period
    asyncio.run(after())
    assert redis.Redis(port=port).exists("gh:w:rpm:k:1")


def test_a_stalled_redis_degrades_too_and_recovery_forgets_the_totals_spent_locally(throwaway_redis, caplog):
    port, _ = throwaway_redis
    caplog.set_level(logging.WARNING, logger="proxy.policies.store")
    control = redis.Redis(port=port)

    async def run():
        state = get_state()
        await state.seed_budget(BKEY, 100, EXPIRES)
        assert (await admit(state, "r0", budgets=[budget(10)], at=0)).admitted
        control.execute_command("SCRIPT", "FLUSH")  # a restarted Redis has no scripts: EVALSHA falls back to EVAL
        assert (await admit(state, "r1", budgets=[budget(10)], at=1)).budgets == {BKEY: 120}
        control.execute_command("CLIENT", "PAUSE", "600", "ALL")
        started = time.monotonic()
        a = await admit(state, "r2", budgets=[budget(10)], at=2)  # times out (0.25 s), then served locally
        assert time.monotonic() - started < 0.6 and a.unseeded == [BKEY] and state.degraded
        await state.seed_budget(BKEY, 100, EXPIRES)
        assert (await admit(state, "r2", budgets=[budget(10)], at=3)).admitted
        await asyncio.sleep(0.7)
        a = await admit(state, "r3", budgets=[budget(10)], at=4)
        assert not state.degraded and a.unseeded == [BKEY]  # Redis's total missed r2: reseed from the ledger
        await state.aclose()

    asyncio.run(run())
    assert len(_warnings(caplog)) == 1
