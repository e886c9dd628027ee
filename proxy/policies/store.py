"""Which policy store this process uses: `get_state()` (LocalState without REDIS_URL, else FallbackState),
`redis_status()` for health and gateway_status, `reset_for_tests()`. FallbackState is the degradation: Redis
while it answers, this process's LocalState (or StateUnavailable, fail-closed) while it does not."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

from django.conf import settings
from redis.exceptions import RedisError

from .state import Admission, BreakerState, StateUnavailable
from .state_local import LocalState
from .state_redis import RedisState

log = logging.getLogger(__name__)
_REDIS_ERRORS = (RedisError, OSError)  # OSError covers TimeoutError and refused connections


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
