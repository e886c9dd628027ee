"""The shared-state store of request policies: sliding-window limits, concurrency caps, budgets, circuit breakers.
This module is its contract: the values passed in and out (Window, Concurrency, Budget, Admission, BreakerState),
the State protocol, and the arithmetic both implementations share, so they produce the same Admission.

Two implementations with the same semantics (and the same test suite): RedisState (state_redis.py), shared by
every process, and LocalState (state_local.py), in this process only. store.py picks one: `get_state()` returns
LocalState without REDIS_URL, else a FallbackState that uses Redis and, while Redis is unreachable, this
process's LocalState (or raises StateUnavailable when GATEWAY_POLICY_FAIL_CLOSED is set); `redis_status()` says
which ("ok" | "degraded" | "off").

Per request: `admit` takes everything at once or nothing (every window's cost, a lease in every concurrency set,
a reservation in every budget) and reads the breakers of the given accounts; `settle` corrects windows to the
actual cost, releases the leases, turns reservations into spending and closes recovered breakers. Each is ONE
round trip (one EVALSHA). Settle is idempotent: it acts only if it deletes the request's marker. Time is the
caller's clock (`now`, unix seconds; processes must be NTP-synced), so tests travel in time without sleeping.

Redis layout (prefix "gh:"; every key has a TTL, nothing leaks):
  w:{key}   hash   bucket start (unix second) -> units. Buckets are 1 s wide (window_s // 300 s above 599 s,
                   so a hash stays near 300 fields); units in bucket b count while b > floor(now) - window_s.
                   TTL window_s + 1.
  c:{key}   zset   request id -> lease expiry. TTL lease_s + 1.
  b:{key}   hash   "s" spent, "r" sum of live reservations. No "s" = unseeded: admit then takes nothing and
                   lists the key (the caller seeds it from the ledger). TTL expires_at + 1 day.
  bq:{key}  zset   "{request id}:{reserve}" -> when it reserved. Admit releases holds older than `stale_s` (a
                   crashed process); a late settle then books its spending but has nothing to release.
  q:{rid}   string the request was admitted and is not settled yet. TTL 1 day.
  k:{id}    hash   breaker: "u" open until (absent = closed; past = half open), "r" reason, "t" the last
                   `threshold` failure times (space separated), "w" their window. TTL a day past its last use.
  kp:{id}   string half-open probe claim: its expiry (compared with `now`). TTL probe_s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

PREFIX = "gh:"
STALE_S = 900  # a reservation not settled after this long belongs to a crashed process
PENDING_S = 86400  # how long a request's settle marker lives
GRACE_S = 86400  # budget keys outlive their period by a day; breaker keys their last use
BUCKETS = 300  # windows longer than 2 x BUCKETS seconds use buckets of window_s // BUCKETS seconds
LEASE_RETRY_S = 1.0  # retry_after for a full concurrency set: a lease may be released any moment


class StateUnavailable(Exception):
    """Redis is down and GATEWAY_POLICY_FAIL_CLOSED is set: refuse rather than admit unchecked."""


@dataclass(frozen=True, slots=True)
class Window:
    """At most `limit` units in any `window_s` seconds; this request takes `cost` units."""

    key: str
    limit: int
    cost: int
    window_s: int = 60


@dataclass(frozen=True, slots=True)
class Concurrency:
    """At most `limit` requests holding a lease at once; a lease not released expires after `lease_s`."""

    key: str
    limit: int
    lease_s: int = 900


@dataclass(frozen=True, slots=True)
class Budget:
    """Money in nanos (1e-8 USD): spent + reserved + reserve must stay within limit until expires_at."""

    key: str
    limit: int
    reserve: int
    expires_at: int


@dataclass(slots=True)
class WindowState:
    limit: int
    remaining: int  # after this request (if admitted), floor 0
    reset_s: float  # until the oldest units in the window fall out (0 if empty)


@dataclass(slots=True)
class BreakerState:
    state: str  # "closed" | "open" | "half_open"
    failures: int  # failures in the current window
    open_until: float  # unix time while open, else 0
    reason: str  # "" | "failures" | "retry-after" | "auth" | ...


@dataclass(slots=True)
class Admission:
    admitted: bool
    refused_by: str | None  # key of the first Window/Concurrency/Budget that refused
    retry_after: float  # seconds until that limit could admit this request
    windows: dict[str, WindowState]
    budgets: dict[str, int]  # seeded budget key -> spent + reserved (incl. this request if admitted)
    unseeded: list[str]  # budget keys without a running total: seed_budget them and admit again
    breakers: dict[int, BreakerState]
    ticket: object  # what settle needs; None when nothing was taken


class State(Protocol):
    async def admit(self, request_id: str, windows: list[Window], concurrency: list[Concurrency],
                    budgets: list[Budget], breaker_ids: list[int], now: float | None = None) -> Admission: ...

    async def settle(self, request_id: str, admission: Admission, *, actual_costs: dict[str, int],
                     budget_actuals: dict[str, int], breaker_success: list[int] = (),
                     now: float | None = None) -> None: ...

    async def seed_budget(self, key: str, spent: int, expires_at: int) -> None: ...

    async def budget_add(self, keys: list[str], spent: int) -> None:
        """Spending that was never admitted (a native upstream batch's results) added to the running totals; a
        total not running yet is left alone: it is seeded from the ledger, which has the spending."""

    async def breaker_failure(self, account_id: int, *, threshold: int, window_s: float, cooldown_s: float,
                              now: float | None = None) -> BreakerState: ...

    async def breaker_cooldown(self, account_id: int, seconds: float, reason: str,
                               now: float | None = None) -> BreakerState: ...

    async def breaker_claim_probe(self, account_id: int, probe_s: float, now: float | None = None) -> bool: ...

    async def breaker_success(self, account_id: int, now: float | None = None) -> None: ...

    async def breaker_states(self, account_ids: list[int], now: float | None = None) -> dict[int, BreakerState]: ...

    async def breaker_reset(self, account_id: int) -> None: ...


class _Ticket:
    """What settle needs: who admitted, when (buckets derive from it), and the specs that were taken."""

    __slots__ = ("budgets", "concurrency", "now", "owner", "windows")

    def __init__(self, owner, now, windows, concurrency, budgets):
        self.owner, self.now, self.windows, self.concurrency, self.budgets = owner, now, windows, concurrency, budgets


# --- shared arithmetic: both backends produce the same raw figures and turn them into an Admission here ---


def _bucket(now: float, window_s: int) -> int:
    width = window_s // BUCKETS if window_s >= 2 * BUCKETS else 1
    second = math.floor(now)
    return second - second % width


def _admission(admitted, refused, free_at, raw, windows, concurrency, budgets, buckets, breakers, now, owner):
    """raw: (units used, oldest bucket holding units or -1) per window, then spent + reserved (-1 = unseeded)
    per budget, as read before this request. refused: 1-based index over windows + concurrency + budgets."""
    states, i = {}, 0
    for w, b in zip(windows, buckets):
        used, oldest = raw[i], raw[i + 1]
        i += 2
        if admitted and w.cost > 0:
            used += w.cost
            oldest = b if oldest < 0 or b < oldest else oldest
        reset = oldest + w.window_s - now if oldest >= 0 else 0.0
        states[w.key] = WindowState(w.limit, max(0, w.limit - used), max(0.0, reset))
    totals, unseeded = {}, []
    for b in budgets:
        total = raw[i]
        i += 1
        if total < 0:
            unseeded.append(b.key)
        else:
            totals[b.key] = total + b.reserve if admitted else total
    refused_by, retry_after = None, 0.0
    if refused:
        refused_by, retry_after = _refusal(refused, free_at, windows, concurrency, budgets, now)
    ticket = _Ticket(owner, now, windows, concurrency, budgets) if admitted else None
    return Admission(admitted, refused_by, retry_after, states, totals, unseeded, breakers, ticket)


def _refusal(index, free_at, windows, concurrency, budgets, now):
    if index <= len(windows):
        w = windows[index - 1]
        return w.key, float(w.window_s) if w.cost > w.limit else max(0.0, free_at - now)
    index -= len(windows)
    if index <= len(concurrency):
        return concurrency[index - 1].key, LEASE_RETRY_S
    b = budgets[index - len(concurrency) - 1]
    return b.key, max(0.0, b.expires_at - now)


def _breaker(until: float, reason: str, times, window: float, now: float) -> BreakerState:
    failures = sum(1 for t in times if t > now - window) if times else 0
    if until <= 0:
        return BreakerState("closed", failures, 0.0, "")
    if now < until:
        return BreakerState("open", failures, until, reason)
    return BreakerState("half_open", failures, 0.0, reason)


def _breaker_from_redis(packed: bytes | None, now: float) -> BreakerState:
    """packed: b"open-until|window|failure times|reason" (empty fields for absent ones), None = no breaker."""
    if not packed:
        return BreakerState("closed", 0, 0.0, "")
    u, w, t, r = packed.split(b"|", 3)
    times = [float(x) for x in t.split()] if t else None
    return _breaker(float(u) if u else 0.0, r.decode(), times, float(w) if w else 0.0, now)


def _breaker_ttl(*seconds: float) -> int:
    return int(max(seconds)) + GRACE_S
