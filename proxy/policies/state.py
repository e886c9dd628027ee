"""The shared-state store of request policies: sliding-window limits, concurrency caps, budgets, circuit breakers.

Two implementations with the same semantics (and the same test suite): RedisState, shared by every process, and
LocalState, in this process only. `get_state()` returns LocalState without REDIS_URL, else a FallbackState that
uses Redis and, while Redis is unreachable, this process's LocalState (or raises StateUnavailable when
GATEWAY_POLICY_FAIL_CLOSED is set); `redis_status()` says which ("ok" | "degraded" | "off").

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

import asyncio
import hashlib
import logging
import math
import threading
import time
import weakref
from dataclasses import dataclass, replace
from typing import Protocol

from django.conf import settings
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from . import resp

log = logging.getLogger(__name__)

PREFIX = "gh:"
STALE_S = 900  # a reservation not settled after this long belongs to a crashed process
PENDING_S = 86400  # how long a request's settle marker lives
GRACE_S = 86400  # budget keys outlive their period by a day; breaker keys their last use
BUCKETS = 300  # windows longer than 2 x BUCKETS seconds use buckets of window_s // BUCKETS seconds
LEASE_RETRY_S = 1.0  # retry_after for a full concurrency set: a lease may be released any moment
_REDIS_ERRORS = (RedisError, OSError)  # OSError covers TimeoutError and refused connections


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


# --- LocalState ---------------------------------------------------------------------------------------------


class _Leases:
    __slots__ = ("expiry", "next_expiry")

    def __init__(self):
        self.expiry: dict[str, float] = {}  # request id -> lease expiry
        self.next_expiry = math.inf

    def live(self, request_id: str, now: float) -> int:
        """Leases held by other requests; expired ones are dropped (scanned only when one may have expired)."""
        if now >= self.next_expiry:
            for rid in [r for r, t in self.expiry.items() if t <= now]:
                del self.expiry[rid]
            self.next_expiry = min(self.expiry.values(), default=math.inf)
        return len(self.expiry) - (request_id in self.expiry)

    def take(self, request_id: str, until: float) -> None:
        self.expiry[request_id] = until
        self.next_expiry = min(self.next_expiry, until)


class _Budget:
    __slots__ = ("expires", "holds", "oldest", "reserved", "spent")

    def __init__(self, spent: int, expires: float):
        self.spent, self.reserved, self.expires = spent, 0, expires
        self.holds: dict[tuple[str, int], float] = {}  # (request id, reserve) -> when it reserved
        self.oldest = math.inf  # a lower bound of the holds' times: scan for stale ones only when it is due

    def release_stale(self, cutoff: float) -> None:
        if self.oldest > cutoff:
            return
        for hold in [h for h, t in self.holds.items() if t <= cutoff]:
            del self.holds[hold]
            self.reserved -= hold[1]
        self.oldest = min(self.holds.values(), default=math.inf)

    def reserve(self, request_id: str, amount: int, now: float) -> None:
        hold = (request_id, amount)
        if hold not in self.holds:
            self.reserved += amount
        self.holds[hold] = now
        self.oldest = min(self.oldest, now)

    def settle(self, request_id: str, amount: int, actual: int) -> None:
        if self.holds.pop((request_id, amount), None) is not None:  # else released as stale already
            self.reserved -= amount
        self.spent += actual


class _Breaker:
    __slots__ = ("expires", "reason", "times", "until", "window")

    def __init__(self):
        self.until, self.reason, self.times, self.window, self.expires = 0.0, "", [], 0.0, 0.0

    def view(self, now: float) -> BreakerState:
        return _breaker(self.until, self.reason, self.times, self.window, now)


class LocalState:
    """The same semantics as RedisState in this process. Every method runs without awaiting inside, so it is
    atomic on one event loop; the lock covers callers on other threads (Celery tasks, the admin)."""

    def __init__(self, *, stale_s: float = STALE_S):
        self.stale_s = stale_s
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        self._windows: dict[str, dict[int, int]] = {}  # key -> bucket -> units
        self._window_until: dict[str, float] = {}  # key -> when its last units have left the window
        self._leases: dict[str, _Leases] = {}
        self._budgets: dict[str, _Budget] = {}
        self._pending: dict[str, float] = {}  # request id -> settle marker expiry
        self._breakers: dict[int, _Breaker] = {}
        self._probes: dict[int, float] = {}
        self._next_sweep = 0.0

    async def aclose(self) -> None:
        """Nothing to close (the same call as on the Redis-backed stores)."""

    def budget_keys(self) -> list[str]:
        with self._lock:
            return list(self._budgets)

    def forget_budgets(self) -> None:
        """Drop every budget total: they are reseeded on next use."""
        with self._lock:
            self._budgets.clear()

    async def admit(self, request_id, windows, concurrency, budgets, breaker_ids, now=None) -> Admission:
        now = time.time() if now is None else now
        with self._lock:
            if now >= self._next_sweep:
                self._sweep(now)
            buckets = [_bucket(now, w.window_s) for w in windows]
            raw: list[int] = []
            refused, free_at = self._check_windows(windows, now, raw)
            for j, c in enumerate(concurrency):
                leases = self._leases.get(c.key)
                if not refused and (leases.live(request_id, now) if leases else 0) >= c.limit:
                    refused = len(windows) + j + 1
            refused, unseeded = self._check_budgets(budgets, now, raw, refused, len(windows) + len(concurrency))
            admitted = not refused and not unseeded
            if admitted:
                self._take(request_id, windows, buckets, concurrency, budgets, now)
            breakers = {i: self._breaker_view(i, now) for i in breaker_ids}
        return _admission(admitted, refused, free_at, raw, windows, concurrency, budgets, buckets, breakers, now, self)

    def _check_windows(self, windows, now, raw):
        refused, free_at, cur = 0, -1, math.floor(now)
        for i, w in enumerate(windows, 1):
            buckets = self._windows.get(w.key)
            used, oldest, lo = 0, -1, cur - w.window_s
            if buckets:
                for b in [b for b in buckets if b <= lo]:
                    del buckets[b]
                for b, v in buckets.items():
                    used += v
                    if v > 0 and (oldest < 0 or b < oldest):
                        oldest = b
            if not refused and used + w.cost > w.limit:
                refused = i
                if w.cost <= w.limit:
                    free_at = _free_at(buckets, used + w.cost - w.limit) + w.window_s
            raw += (used, oldest)
        return refused, free_at

    def _check_budgets(self, budgets, now, raw, refused, before):
        unseeded = False
        for j, b in enumerate(budgets):
            entry = self._budget(b.key, now)
            if entry is None:
                unseeded = True
                raw.append(-1)
                continue
            entry.release_stale(now - self.stale_s)
            total = entry.spent + entry.reserved
            if not refused and total + b.reserve > b.limit:
                refused = before + j + 1
            raw.append(total)
        return refused, unseeded

    def _take(self, request_id, windows, buckets, concurrency, budgets, now) -> None:
        for w, b in zip(windows, buckets):
            units = self._windows.setdefault(w.key, {})
            units[b] = units.get(b, 0) + w.cost
            self._window_until[w.key] = now + w.window_s + 1
        for c in concurrency:
            leases = self._leases.get(c.key)
            if leases is None:
                leases = self._leases[c.key] = _Leases()
            leases.take(request_id, now + c.lease_s)
        for b in budgets:
            self._budgets[b.key].reserve(request_id, b.reserve, now)
        if windows or concurrency or budgets:
            self._pending[request_id] = now + PENDING_S

    def _budget(self, key: str, now: float) -> _Budget | None:
        entry = self._budgets.get(key)
        if entry is not None and entry.expires <= now:
            del self._budgets[key]
            return None
        return entry

    async def settle(self, request_id, admission, *, actual_costs, budget_actuals, breaker_success=(), now=None):
        now = time.time() if now is None else now
        ticket = admission.ticket
        with self._lock:
            if ticket is not None and (ticket.windows or ticket.concurrency or ticket.budgets):
                marker = self._pending.pop(request_id, None)
                if marker is None or marker <= now:
                    return  # settled already (or too late): change nothing
                self._settle_resources(request_id, ticket, actual_costs, budget_actuals, now)
            for account_id in breaker_success:
                self._success(account_id, now)

    def _settle_resources(self, request_id, ticket, actual_costs, budget_actuals, now) -> None:
        cur = math.floor(now)
        for w in ticket.windows:
            delta = actual_costs.get(w.key, w.cost) - w.cost
            b = _bucket(ticket.now, w.window_s)
            units = self._windows.get(w.key)
            if delta and b > cur - w.window_s and units and b in units:
                units[b] = max(0, units[b] + delta)
        for c in ticket.concurrency:
            leases = self._leases.get(c.key)
            if leases is not None:
                leases.expiry.pop(request_id, None)
        for b in ticket.budgets:
            entry = self._budget(b.key, now)
            if entry is not None:
                entry.settle(request_id, b.reserve, budget_actuals.get(b.key, 0))

    async def seed_budget(self, key: str, spent: int, expires_at: int) -> None:
        with self._lock:
            if key not in self._budgets:
                self._budgets[key] = _Budget(spent, expires_at + GRACE_S)

    async def budget_add(self, keys: list[str], spent: int) -> None:
        with self._lock:
            for key in keys:
                if key in self._budgets:
                    self._budgets[key].spent += spent

    def _live_breaker(self, account_id: int, now: float) -> _Breaker | None:
        br = self._breakers.get(account_id)
        if br is not None and br.expires <= now:
            del self._breakers[account_id]
            return None
        return br

    def _breaker_view(self, account_id: int, now: float) -> BreakerState:
        br = self._live_breaker(account_id, now)
        return br.view(now) if br else BreakerState("closed", 0, 0.0, "")

    async def breaker_failure(self, account_id, *, threshold, window_s, cooldown_s, now=None) -> BreakerState:
        now = time.time() if now is None else now
        with self._lock:
            br = self._live_breaker(account_id, now) or self._breakers.setdefault(account_id, _Breaker())
            br.times = ([t for t in br.times if t > now - window_s] + [now])[-max(1, threshold):]
            br.window = window_s
            if (br.until > 0 and now >= br.until) or (br.until <= 0 and len(br.times) >= threshold):
                br.until, br.reason = now + cooldown_s, "failures"  # a failed probe reopens at once
                self._probes.pop(account_id, None)
            br.expires = max(br.expires, now + _breaker_ttl(window_s, cooldown_s))
            return br.view(now)

    async def breaker_cooldown(self, account_id, seconds, reason, now=None) -> BreakerState:
        now = time.time() if now is None else now
        with self._lock:
            br = self._live_breaker(account_id, now) or self._breakers.setdefault(account_id, _Breaker())
            if now + seconds > br.until:  # never shortens a longer cooldown
                br.until, br.reason = now + seconds, reason
                self._probes.pop(account_id, None)
                br.expires = max(br.expires, now + _breaker_ttl(seconds))
            return br.view(now)

    async def breaker_claim_probe(self, account_id, probe_s, now=None) -> bool:
        now = time.time() if now is None else now
        with self._lock:
            br = self._live_breaker(account_id, now)
            if br is None or br.until <= 0:
                return True  # closed: everyone may pass
            if now < br.until or self._probes.get(account_id, 0.0) > now:
                return False
            self._probes[account_id] = now + probe_s
            return True

    async def breaker_success(self, account_id, now=None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            self._success(account_id, now)

    def _success(self, account_id: int, now: float) -> None:
        br = self._live_breaker(account_id, now)
        if br is not None and br.until > now:
            br.times = []  # still open (e.g. a 429 cooldown that began during this request): only forget failures
        else:
            self._breakers.pop(account_id, None)
            self._probes.pop(account_id, None)

    async def breaker_states(self, account_ids, now=None) -> dict[int, BreakerState]:
        now = time.time() if now is None else now
        with self._lock:
            return {i: self._breaker_view(i, now) for i in account_ids}

    async def breaker_reset(self, account_id) -> None:
        with self._lock:
            self._breakers.pop(account_id, None)
            self._probes.pop(account_id, None)

    def _sweep(self, now: float) -> None:
        """Drop what has expired, once a minute, so idle keys do not accumulate."""
        self._next_sweep = now + 60
        for key in [k for k, t in self._window_until.items() if t <= now]:
            del self._window_until[key]
            self._windows.pop(key, None)
        for key in [k for k, leases in self._leases.items() if leases.live("", now) == 0]:
            del self._leases[key]
        for key in [k for k, b in self._budgets.items() if b.expires <= now]:
            del self._budgets[key]
        for rid in [r for r, t in self._pending.items() if t <= now]:
            del self._pending[rid]
        for account_id in [a for a, br in self._breakers.items() if br.expires <= now]:
            del self._breakers[account_id]
        for account_id in [a for a, t in self._probes.items() if t <= now]:
            del self._probes[account_id]


def _free_at(buckets: dict[int, int], need: int) -> int:
    """The bucket whose expiry frees `need` units (oldest first)."""
    for b in sorted(buckets):
        need -= buckets[b]
        if need <= 0:
            return b
    return max(buckets)


# --- RedisState ---------------------------------------------------------------------------------------------


class _Script:
    __slots__ = ("sha", "text")

    def __init__(self, text: str):
        self.text, self.sha = text, hashlib.sha1(text.encode()).hexdigest()


# A breaker's hash as one string, "u|w|t|r" (reason last: it may contain anything), or false if there is none.
_BREAKER = """
local function breaker(k)
  local v = redis.call('HMGET', k, 'u', 'w', 't', 'r')
  if not (v[1] or v[3]) then return false end
  return (v[1] or '') .. '|' .. (v[2] or '') .. '|' .. (v[3] or '') .. '|' .. (v[4] or '')
end
"""

# KEYS: windows, lease sets, budget hashes, budget holds, the request's marker, breakers.
# ARGV: now, floor(now), request id, #windows, #lease sets, #budgets, stale cutoff, marker TTL, then
# (limit, cost, window_s, bucket) per window, (limit, lease expiry, TTL) per set, (limit, reserve, expire at) per
# budget. Returns {admitted, refused index, free-at second, (used, oldest) per window, spent + reserved (-1 =
# unseeded) per budget, packed breaker per account}, the figures read before this request. At most 100 stale
# holds per budget are released per call, so one script's work stays bounded.
_ADMIT = _Script(_BREAKER + """
local cur, rid = tonumber(ARGV[2]), ARGV[3]
local nw, nc, nb = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local out, refused, unseeded, a = {0, 0, -1}, 0, false, 9
local function free_at(f, lo, need)
  local bs, v = {}, {}
  for j = 1, #f, 2 do
    local b = tonumber(f[j])
    if b > lo then bs[#bs + 1] = b; v[b] = tonumber(f[j + 1]) end
  end
  table.sort(bs)
  for _, b in ipairs(bs) do
    need = need - v[b]
    if need <= 0 then return b end
  end
  return bs[#bs]
end
for i = 1, nw do
  local k, limit, cost, win = KEYS[i], tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local f, lo, used, oldest, old = redis.call('HGETALL', k), cur - win, 0, -1, {}
  for j = 1, #f, 2 do
    local b, v = tonumber(f[j]), tonumber(f[j + 1])
    if b <= lo then old[#old + 1] = f[j] else
      used = used + v
      if v > 0 and (oldest < 0 or b < oldest) then oldest = b end
    end
  end
  if #old > 0 then redis.call('HDEL', k, unpack(old)) end
  if refused == 0 and used + cost > limit then
    refused = i
    if cost <= limit then out[3] = free_at(f, lo, used + cost - limit) + win end
  end
  out[#out + 1] = used
  out[#out + 1] = oldest
  a = a + 4
end
for i = 1, nc do
  local k = KEYS[nw + i]
  redis.call('ZREMRANGEBYSCORE', k, '-inf', ARGV[1])
  local live = redis.call('ZCARD', k)
  if redis.call('ZSCORE', k, rid) then live = live - 1 end
  if refused == 0 and live >= tonumber(ARGV[a]) then refused = nw + i end
  a = a + 3
end
local base = nw + nc
for i = 1, nb do
  local h, z = KEYS[base + i], KEYS[base + nb + i]
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', ARGV[7], 'LIMIT', 0, 100)
  for _, m in ipairs(gone) do
    local amt = string.match(m, ':(%d+)$')
    if amt and amt ~= '0' then redis.call('HINCRBY', h, 'r', '-' .. amt) end
  end
  if #gone > 0 then redis.call('ZREM', z, unpack(gone)) end
  local v = redis.call('HMGET', h, 's', 'r')
  if v[1] then
    local total = tonumber(v[1]) + tonumber(v[2] or '0')
    if refused == 0 and total + tonumber(ARGV[a + 1]) > tonumber(ARGV[a]) then refused = base + i end
    out[#out + 1] = total
  else
    unseeded = true
    out[#out + 1] = -1
  end
  a = a + 3
end
out[2] = refused
if refused == 0 and not unseeded then
  out[1], a = 1, 9
  for i = 1, nw do
    if redis.call('HINCRBY', KEYS[i], ARGV[a + 3], ARGV[a + 1]) == tonumber(ARGV[a + 1]) then
      redis.call('EXPIRE', KEYS[i], tonumber(ARGV[a + 2]) + 1)
    end
    a = a + 4
  end
  for i = 1, nc do
    redis.call('ZADD', KEYS[nw + i], ARGV[a + 1], rid)
    redis.call('EXPIRE', KEYS[nw + i], ARGV[a + 2])
    a = a + 3
  end
  for i = 1, nb do
    local z = KEYS[base + nb + i]
    if redis.call('ZADD', z, ARGV[1], rid .. ':' .. ARGV[a + 1]) == 1 and ARGV[a + 1] ~= '0' then
      redis.call('HINCRBY', KEYS[base + i], 'r', ARGV[a + 1])
    end
    redis.call('EXPIREAT', z, ARGV[a + 2])
    a = a + 3
  end
  if base + nb > 0 then redis.call('SET', KEYS[base + 2 * nb + 1], '1', 'EX', ARGV[8]) end
end
for i = base + 2 * nb + 2, #KEYS do out[#out + 1] = breaker(KEYS[i]) end
return out
""")

# KEYS: [marker], windows to correct, lease sets, budget hashes, budget holds, (breaker, probe) per recovered
# account. ARGV: now, floor(now), request id, #windows, #lease sets, #budgets, has marker, then (delta, bucket,
# window_s) per window and (actual cost, reserve) per budget. A hold released as stale is gone: ZREM says 0, so a
# late settle books its spending and releases nothing.
_SETTLE = _Script("""
local now, cur, rid = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local nw, nc, nb = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local k, a = 1, 8
if ARGV[7] == '1' then
  if redis.call('DEL', KEYS[1]) == 0 then return 0 end
  k = 2
end
for i = 1, nw do
  local b = ARGV[a + 1]
  if tonumber(b) > cur - tonumber(ARGV[a + 2]) and redis.call('HEXISTS', KEYS[k], b) == 1 then
    if redis.call('HINCRBY', KEYS[k], b, ARGV[a]) < 0 then redis.call('HSET', KEYS[k], b, 0) end
  end
  k, a = k + 1, a + 3
end
for i = 1, nc do redis.call('ZREM', KEYS[k], rid); k = k + 1 end
for i = 1, nb do
  local h, amt = KEYS[k], ARGV[a + 1]
  if redis.call('ZREM', KEYS[k + nb], rid .. ':' .. amt) == 1 and amt ~= '0' then
    redis.call('HINCRBY', h, 'r', '-' .. amt)
  end
  if ARGV[a] ~= '0' and redis.call('HEXISTS', h, 's') == 1 then redis.call('HINCRBY', h, 's', ARGV[a]) end
  k, a = k + 1, a + 2
end
k = k + nb
while k < #KEYS do
  local u = redis.call('HGET', KEYS[k], 'u')
  if u and tonumber(u) > now then redis.call('HDEL', KEYS[k], 't') else redis.call('DEL', KEYS[k], KEYS[k + 1]) end
  k = k + 2
end
return 1
""")

# KEYS: breaker, probe. ARGV: now, threshold, window_s, open-until if this opens it, TTL.
_FAILURE = _Script(_BREAKER + """
local now, thr, lo = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[1]) - tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 'u', 't')
local u, ts = tonumber(v[1] or '0'), {}
for x in string.gmatch(v[2] or '', '%S+') do
  if tonumber(x) > lo then ts[#ts + 1] = x end
end
ts[#ts + 1] = ARGV[1]
while #ts > math.max(thr, 1) do table.remove(ts, 1) end
redis.call('HSET', KEYS[1], 't', table.concat(ts, ' '), 'w', ARGV[3])
if (u > 0 and now >= u) or (u <= 0 and #ts >= thr) then
  redis.call('HSET', KEYS[1], 'u', ARGV[4], 'r', 'failures')
  redis.call('DEL', KEYS[2])
end
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[5]) then redis.call('EXPIRE', KEYS[1], ARGV[5]) end
return breaker(KEYS[1])
""")

# KEYS: breaker, probe. ARGV: open until, reason, TTL.
_COOLDOWN = _Script(_BREAKER + """
if tonumber(ARGV[1]) > tonumber(redis.call('HGET', KEYS[1], 'u') or '0') then
  redis.call('HSET', KEYS[1], 'u', ARGV[1], 'r', ARGV[2])
  redis.call('DEL', KEYS[2])
  if redis.call('TTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
end
return breaker(KEYS[1])
""")

# KEYS: breaker, probe. ARGV: now, probe expiry, probe TTL in ms.
_PROBE = _Script("""
local u, now = tonumber(redis.call('HGET', KEYS[1], 'u') or '0'), tonumber(ARGV[1])
if u <= 0 then return 1 end
if now < u then return 0 end
local p = redis.call('GET', KEYS[2])
if p and tonumber(p) > now then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
""")

_READ = _Script(_BREAKER + """
local out = {}
for i = 1, #KEYS do out[i] = breaker(KEYS[i]) end
return out
""")

_SEED = _Script("""
redis.call('HSETNX', KEYS[1], 's', ARGV[1])
redis.call('EXPIREAT', KEYS[1], ARGV[2])
return 1
""")

_ADD = _Script("""
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('HINCRBY', KEYS[i], 's', ARGV[1]) end
end
return 1
""")


class RedisState:
    """The policy state in Redis, shared by every process. One client per running event loop (a client's
    connections belong to the loop that opened them), fail-fast timeouts and no client-side retries: when Redis
    is slow or gone, FallbackState should know at once."""

    def __init__(self, url: str, *, prefix: str = PREFIX, timeout: float | None = None, stale_s: float = STALE_S):
        self.url, self.prefix, self.timeout, self.stale_s = url, prefix, timeout, stale_s
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Redis] = weakref.WeakKeyDictionary()
        self._lean_connections: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _client(self) -> Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            timeout = self.timeout
            if timeout is None:
                timeout = float(getattr(settings, "GATEWAY_REDIS_TIMEOUT", 1.0))
            client = self._clients[loop] = Redis.from_url(
                self.url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
            )
        return client

    async def aclose(self) -> None:
        """Close the running loop's client (shutdown, tests)."""
        loop = asyncio.get_running_loop()
        lean = self._lean_connections.pop(loop, None)
        if lean is not None:
            lean.close()
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()

    async def _eval(self, script: _Script, args: list):
        """args: numkeys, keys..., argv... The script is cached by Redis after its first EVAL (or SCRIPT LOAD).
        Sent on the loop's lean pipelined connection (resp.py): these are the calls every limited request makes."""
        conn = self._lean()
        try:
            return await conn.call("EVALSHA", script.sha, *args)
        except NoScriptError:
            return await conn.call("EVAL", script.text, *args)

    def _lean(self) -> resp.Connection:
        loop = asyncio.get_running_loop()
        conn = self._lean_connections.get(loop)
        if conn is None:
            timeout = self.timeout if self.timeout is not None else float(getattr(settings, "GATEWAY_REDIS_TIMEOUT", 1.0))
            conn = self._lean_connections[loop] = resp.Connection(self.url, timeout)
        return conn

    async def admit(self, request_id, windows, concurrency, budgets, breaker_ids, now=None) -> Admission:
        now = time.time() if now is None else now
        if not (windows or concurrency or budgets or breaker_ids):
            return _admission(True, 0, -1, [], windows, concurrency, budgets, [], {}, now, self)
        p = self.prefix
        buckets = [_bucket(now, w.window_s) for w in windows]
        keys = [p + "w:" + w.key for w in windows]
        keys += [p + "c:" + c.key for c in concurrency]
        keys += [p + "b:" + b.key for b in budgets]
        keys += [p + "bq:" + b.key for b in budgets]
        keys.append(p + "q:" + request_id)
        keys += [f"{p}k:{i}" for i in breaker_ids]
        args = [len(keys), *keys, now, math.floor(now), request_id, len(windows), len(concurrency), len(budgets),
                now - self.stale_s, PENDING_S]
        for w, b in zip(windows, buckets):
            args += (w.limit, w.cost, w.window_s, b)
        for c in concurrency:
            args += (c.limit, now + c.lease_s, c.lease_s + 1)
        for b in budgets:
            args += (b.limit, b.reserve, b.expires_at + GRACE_S)
        res = await self._eval(_ADMIT, args)
        end = 3 + 2 * len(windows) + len(budgets)
        breakers = {i: _breaker_from_redis(packed, now) for i, packed in zip(breaker_ids, res[end:])}
        raw = res[3:end]
        return _admission(res[0] == 1, res[1], res[2], raw, windows, concurrency, budgets, buckets, breakers, now, self)

    async def settle(self, request_id, admission, *, actual_costs, budget_actuals, breaker_success=(), now=None):
        ticket = admission.ticket
        held = ticket is not None and bool(ticket.windows or ticket.concurrency or ticket.budgets)
        if not held and not breaker_success:
            return
        now = time.time() if now is None else now
        p, keys, argv, counts = self.prefix, [], [], (0, 0, 0)
        if held:
            keys.append(p + "q:" + request_id)
            for w in ticket.windows:
                actual = actual_costs.get(w.key)
                if actual is not None and actual != w.cost:
                    keys.append(p + "w:" + w.key)
                    argv += (actual - w.cost, _bucket(ticket.now, w.window_s), w.window_s)
            counts = (len(keys) - 1, len(ticket.concurrency), len(ticket.budgets))
            keys += [p + "c:" + c.key for c in ticket.concurrency]
            keys += [p + "b:" + b.key for b in ticket.budgets]
            keys += [p + "bq:" + b.key for b in ticket.budgets]
            for b in ticket.budgets:
                argv += (budget_actuals.get(b.key, 0), b.reserve)
        for i in breaker_success:
            keys += (f"{p}k:{i}", f"{p}kp:{i}")
        await self._eval(_SETTLE, [len(keys), *keys, now, math.floor(now), request_id, *counts, int(held), *argv])

    async def seed_budget(self, key: str, spent: int, expires_at: int) -> None:
        await self._eval(_SEED, [1, self.prefix + "b:" + key, spent, expires_at + GRACE_S])

    async def budget_add(self, keys: list[str], spent: int) -> None:
        await self._eval(_ADD, [len(keys), *(self.prefix + "b:" + k for k in keys), spent])

    def _breaker_keys(self, account_id: int) -> tuple[str, str]:
        return f"{self.prefix}k:{account_id}", f"{self.prefix}kp:{account_id}"

    async def breaker_failure(self, account_id, *, threshold, window_s, cooldown_s, now=None) -> BreakerState:
        now = time.time() if now is None else now
        ttl = _breaker_ttl(window_s, cooldown_s)
        res = await self._eval(_FAILURE, [2, *self._breaker_keys(account_id), now, threshold, window_s,
                                          now + cooldown_s, ttl])
        return _breaker_from_redis(res, now)

    async def breaker_cooldown(self, account_id, seconds, reason, now=None) -> BreakerState:
        now = time.time() if now is None else now
        res = await self._eval(_COOLDOWN, [2, *self._breaker_keys(account_id), now + seconds, reason,
                                           _breaker_ttl(seconds)])
        return _breaker_from_redis(res, now)

    async def breaker_claim_probe(self, account_id, probe_s, now=None) -> bool:
        now = time.time() if now is None else now
        args = [2, *self._breaker_keys(account_id), now, now + probe_s, max(1, math.ceil(probe_s * 1000))]
        return await self._eval(_PROBE, args) == 1

    async def breaker_success(self, account_id, now=None) -> None:
        now = time.time() if now is None else now
        await self._eval(_SETTLE, [2, *self._breaker_keys(account_id), now, math.floor(now), "", 0, 0, 0, 0])

    async def breaker_states(self, account_ids, now=None) -> dict[int, BreakerState]:
        if not account_ids:
            return {}
        now = time.time() if now is None else now
        res = await self._eval(_READ, [len(account_ids), *(f"{self.prefix}k:{i}" for i in account_ids)])
        return {i: _breaker_from_redis(packed, now) for i, packed in zip(account_ids, res)}

    async def breaker_reset(self, account_id) -> None:
        await self._client().delete(*self._breaker_keys(account_id))

    async def forget_budgets(self, keys) -> None:
        """Delete budget totals (they are reseeded from the ledger on next use); with no keys, just a ping."""
        if not keys:
            await self._client().ping()
            return
        p = self.prefix
        await self._client().delete(*(p + "b:" + k for k in keys), *(p + "bq:" + k for k in keys))


# --- degradation ------------------------------------------------------------------------------------------


class FallbackState:
    """Redis while it answers; while it does not, this process's LocalState (or StateUnavailable when fail-closed).

    The first failing call starts a down period: one warning, budget totals of any earlier outage dropped from the
    local store (they are stale), and Redis is tried again only every GATEWAY_REDIS_RETRY_SECONDS. Limits are then
    per process. A request settles where it was admitted. On recovery, Redis forgets the budget totals this process
    spent on locally (or could not settle there), so they are reseeded from the ledger instead of missing that
    spending."""

    def __init__(self, redis_state: RedisState, local: LocalState | None = None, *, retry_s: float | None = None,
                 fail_closed: bool | None = None):
        self.redis, self.local = redis_state, local or LocalState()
        self.retry_s, self.fail_closed = retry_s, fail_closed
        self.down_since: float | None = None  # monotonic
        self._retry_at = 0.0
        self._lost: set[str] = set()  # budgets whose Redis total misses spending booked elsewhere

    @property
    def degraded(self) -> bool:
        return self.down_since is not None

    async def aclose(self) -> None:
        """Close the running loop's Redis client (at the end of a short-lived loop: asyncio.run, shutdown)."""
        await self.redis.aclose()

    def _retry_seconds(self) -> float:
        if self.retry_s is not None:
            return self.retry_s
        return float(getattr(settings, "GATEWAY_REDIS_RETRY_SECONDS", 5.0))

    def _closed(self) -> bool:
        if self.fail_closed is not None:
            return self.fail_closed
        return _truthy(getattr(settings, "GATEWAY_POLICY_FAIL_CLOSED", False))

    def _fallback(self) -> LocalState:
        if self._closed():
            raise StateUnavailable("the policy store (Redis) is unreachable")
        return self.local

    def _down(self, exc: BaseException) -> None:
        now = time.monotonic()
        self._retry_at = now + self._retry_seconds()
        if self.down_since is None:
            self.down_since = now
            self.local.forget_budgets()
            instead = "refusing requests (fail-closed)" if self._closed() else "this process's own counters"
            log.warning("Redis is unreachable (%r): request policies use %s; retrying every %.3g s", exc, instead,
                        self._retry_seconds())

    async def _up(self) -> bool:
        """Whether to use Redis for this call: yes unless down; while down, one caller per retry period tries."""
        if self.down_since is None:
            return True
        now = time.monotonic()
        if now < self._retry_at:
            return False
        self._retry_at = now + self._retry_seconds()  # the other callers stay local meanwhile
        lost = self._lost | set(self.local.budget_keys())
        try:
            await self.redis.forget_budgets(sorted(lost))
        except _REDIS_ERRORS as exc:
            log.debug("Redis still unreachable: %r", exc)
            return False
        log.info("Redis answers again after %.1f s: request policies use it again", now - self.down_since)
        self.down_since = None
        self._lost.clear()
        return True

    async def _call(self, name: str, *args, **kwargs):
        if await self._up():
            try:
                return await getattr(self.redis, name)(*args, **kwargs)
            except _REDIS_ERRORS as exc:
                self._down(exc)
        return await getattr(self._fallback(), name)(*args, **kwargs)

    async def admit(self, request_id, windows, concurrency, budgets, breaker_ids, now=None) -> Admission:
        return await self._call("admit", request_id, windows, concurrency, budgets, breaker_ids, now)

    async def settle(self, request_id, admission, *, actual_costs, budget_actuals, breaker_success=(), now=None):
        kwargs = {"actual_costs": actual_costs, "budget_actuals": budget_actuals,
                  "breaker_success": breaker_success, "now": now}
        ticket = admission.ticket
        if ticket is not None and ticket.owner is self.local:
            return await self.local.settle(request_id, admission, **kwargs)  # admitted during an outage
        if await self._up():
            try:
                return await self.redis.settle(request_id, admission, **kwargs)
            except _REDIS_ERRORS as exc:
                self._down(exc)
        if ticket is not None:
            self._lost.update(b.key for b in ticket.budgets)  # Redis never booked this: reseed on recovery
        await self._fallback().settle(request_id, replace(admission, ticket=None), **kwargs)  # breakers only

    async def seed_budget(self, key, spent, expires_at) -> None:
        return await self._call("seed_budget", key, spent, expires_at)

    async def budget_add(self, keys, spent) -> None:
        return await self._call("budget_add", keys, spent)

    async def breaker_failure(self, account_id, *, threshold, window_s, cooldown_s, now=None) -> BreakerState:
        return await self._call("breaker_failure", account_id, threshold=threshold, window_s=window_s,
                                cooldown_s=cooldown_s, now=now)

    async def breaker_cooldown(self, account_id, seconds, reason, now=None) -> BreakerState:
        return await self._call("breaker_cooldown", account_id, seconds, reason, now)

    async def breaker_claim_probe(self, account_id, probe_s, now=None) -> bool:
        return await self._call("breaker_claim_probe", account_id, probe_s, now)

    async def breaker_success(self, account_id, now=None) -> None:
        return await self._call("breaker_success", account_id, now)

    async def breaker_states(self, account_ids, now=None) -> dict[int, BreakerState]:
        return await self._call("breaker_states", account_ids, now)

    async def breaker_reset(self, account_id) -> None:
        return await self._call("breaker_reset", account_id)


def _truthy(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


_current: tuple[str, LocalState | FallbackState] | None = None
_current_lock = threading.Lock()


def get_state() -> LocalState | FallbackState:
    """This process's state store, built on first use from settings.REDIS_URL (and rebuilt if it changes)."""
    global _current
    url = settings.REDIS_URL
    current = _current
    if current is None or current[0] != url:
        with _current_lock:
            current = _current
            if current is None or current[0] != url:
                state = FallbackState(RedisState(url)) if url else LocalState()
                current = _current = (url, state)
    return current[1]


def redis_status() -> str:
    """'off' without REDIS_URL, 'degraded' while this process serves policies without Redis, else 'ok'."""
    if not settings.REDIS_URL:
        return "off"
    state = get_state()
    return "degraded" if isinstance(state, FallbackState) and state.degraded else "ok"


def reset_for_tests() -> None:
    """Forget the process's store: local counters, the down period and cached Redis clients."""
    global _current
    with _current_lock:
        current, _current = _current, None
    if current is not None:
        state = current[1]
        if isinstance(state, FallbackState):
            state.local.clear()
            state.redis._clients.clear()
        else:
            state.clear()
