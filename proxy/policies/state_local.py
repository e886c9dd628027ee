"""LocalState: the policy store in this process only (no REDIS_URL, or while Redis is down: store.py). The same
semantics as RedisState (state_redis.py), checked by the same tests; the shared arithmetic is in state.py."""

from __future__ import annotations

import math
import threading
import time

from .state import GRACE_S, PENDING_S, STALE_S, Admission, BreakerState, _admission, _breaker, _breaker_ttl, _bucket


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
