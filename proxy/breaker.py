"""Account health: a circuit breaker per upstream account, shared through the policy state store.

    closed --(GATEWAY_BREAKER_THRESHOLD failures within GATEWAY_BREAKER_WINDOW_SECONDS)--> open
    open   --(GATEWAY_BREAKER_COOLDOWN_SECONDS later)--> half_open: one request (the probe) may try it
    half_open --probe succeeds--> closed          half_open --probe fails--> open again
A 429 opens it for the upstream's retry-after (reason "retry-after"); a rejected credential (401/403) for
GATEWAY_CREDENTIAL_COOLDOWN_SECONDS (reason "auth"), and the account's last_error says so in the admin.

A breaker only orders accounts: selection (proxy/selection.py) skips open ones while another account of the
route is healthy, and when none is sends the request anyway (panic routing; such a call counts as the account's
probe: answered, it closes the breaker), unless the route fails fast. It reads `health()` before each request: from the admit
round trip when the key has limits, else from a cache at most GATEWAY_BREAKER_SYNC_SECONDS old, so a breaker
opened by another process is seen within that time. Failures are written at once (one state call, only when an
attempt failed).
"""

import asyncio
import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from accounts.services import account_error_set
from usage import metrics

from .policies.state import BreakerState, StateUnavailable
from .policies.store import get_state
from .routing import account_labels

log = logging.getLogger(__name__)

CLOSED = BreakerState("closed", 0, 0.0, "")
_cache: dict[int, tuple[float, BreakerState]] = {}
_marked: dict[int, float] = {}  # account id -> when its last_error was last written (at most every 10 s)
MARK_EVERY = 10.0


async def health(account_ids) -> dict[int, BreakerState]:
    if not settings.GATEWAY_BREAKER_THRESHOLD:
        return {}
    now = time.monotonic()
    ttl = settings.GATEWAY_BREAKER_SYNC_SECONDS
    stale = [a for a in account_ids if a not in _cache or now - _cache[a][0] > ttl]
    if stale:
        try:
            remember(await get_state().breaker_states(stale))
        except StateUnavailable:  # fail-closed and Redis down: the last known states (unknown = healthy)
            pass
    return {a: _cache[a][1] for a in account_ids if a in _cache}


def remember(states: dict[int, BreakerState]) -> None:
    now = time.monotonic()
    for account_id, state in states.items():
        before = _cache.get(account_id)
        _cache[account_id] = (now, state)
        if before is None or before[1].state != state.state:  # the gauge moves only when the state does
            _gauge(account_id, state)


def panicked(pick) -> None:
    """Count a call sent although every account of its route is open (proxy/selection.py, panic routing)."""
    metrics.breaker_panic.labels(pick.target.provider.name, pick.account.name).inc()


def panic_answered(account_id: int) -> None:
    """A call sent in panic routing was answered (2xx): it counts as the account's probe, so the breaker closes,
    in the background (nothing waits for the state store before the first byte)."""
    remember({account_id: CLOSED})
    task = asyncio.get_running_loop().create_task(_close_quietly(account_id))
    _closing.add(task)
    task.add_done_callback(_closing.discard)


async def _close_quietly(account_id: int) -> None:
    try:
        await get_state().breaker_reset(account_id)
    except StateUnavailable:
        log.debug("breaker state unavailable; account %s not closed", account_id)


_closing: set[asyncio.Task] = set()


def is_recovering(account_id: int) -> bool:
    cached = _cache.get(account_id)
    return cached is not None and (cached[1].state != "closed" or cached[1].failures > 0)


async def close(account_id: int) -> None:
    await get_state().breaker_success(account_id)
    remember({account_id: CLOSED})


async def claim_probe(account_id: int) -> bool:
    try:
        return await get_state().breaker_claim_probe(account_id, settings.GATEWAY_BREAKER_PROBE_SECONDS)
    except StateUnavailable:
        return True


async def failed(account, provider_name: str, health: str, error, retry_after: float | None) -> None:
    """Book one failed attempt: health is 'failure', 'cooldown' (429) or 'credential' (401/403)."""
    if health == "none" or not settings.GATEWAY_BREAKER_THRESHOLD:
        return
    try:
        await _book(account, provider_name, health, error, retry_after)
    except StateUnavailable:
        log.debug("breaker state unavailable; failure of %s/%s not booked", provider_name, account.name)


async def _book(account, provider_name: str, health: str, error, retry_after: float | None) -> None:
    state = get_state()
    if health == "cooldown":
        seconds = retry_after if retry_after else settings.GATEWAY_BREAKER_RATE_LIMIT_SECONDS
        new = await state.breaker_cooldown(account.id, seconds, "retry-after")
    elif health == "credential":
        new = await state.breaker_cooldown(account.id, settings.GATEWAY_CREDENTIAL_COOLDOWN_SECONDS, "auth")
        _mark(account.id, f"upstream refused this credential: {error.message}"[:500], force=True)
    else:
        before = _cache.get(account.id, (0, CLOSED))[1].state
        new = await state.breaker_failure(
            account.id,
            threshold=settings.GATEWAY_BREAKER_THRESHOLD,
            window_s=settings.GATEWAY_BREAKER_WINDOW_SECONDS,
            cooldown_s=settings.GATEWAY_BREAKER_COOLDOWN_SECONDS,
        )
        if new.state == "open" and before != "open":
            log.warning("circuit opened for %s/%s after %d failures", provider_name, account.name, new.failures)
        _mark(account.id, error.message[:500])
    remember({account.id: new})


def _mark(account_id: int, message: str, force: bool = False) -> None:
    """Write the account's last_error for the admin, in a thread, at most every MARK_EVERY seconds."""
    now = time.monotonic()
    if not force and now - _marked.get(account_id, -MARK_EVERY) < MARK_EVERY:
        return
    _marked[account_id] = now
    threading.Thread(target=_write_mark, args=(account_id, message), daemon=True).start()


def _write_mark(account_id: int, message: str) -> None:
    close_old_connections()
    try:
        account_error_set(account_id, message, timezone.now())
    except Exception:
        log.exception("could not record an account's last error")
    finally:
        connection.close()


def _gauge(account_id: int, state: BreakerState) -> None:
    provider, account = account_labels.get(account_id, ("", str(account_id)))
    metrics.circuit_state.labels(provider, account).set(metrics.CIRCUIT_VALUES.get(state.state, 0))


async def reset(account_id: int) -> None:
    await get_state().breaker_reset(account_id)
    remember({account_id: CLOSED})


def account_health(enabled: bool, state: BreakerState | None, cooling: bool) -> str:
    """One account's health in a word: "disabled", "unhealthy" (breaker not closed, or cooling down after a
    refused credential), "ok", or "unknown" (state None: not readable from here). gateway_status and the admin."""
    if not enabled:
        return "disabled"
    if cooling or (state is not None and state.state != "closed"):
        return "unhealthy"
    return "unknown" if state is None else "ok"


def states_now(account_ids) -> dict[int, BreakerState]:
    """The shared state, read from sync code (the admin) on a short event loop of its own; {} if unavailable."""

    ids = list(account_ids)  # a queryset is read here, in sync code

    async def read():
        return await get_state().breaker_states(ids)

    try:
        return asyncio.run(_short_loop(read))
    except StateUnavailable:
        return {}


def reset_now(account_ids) -> None:
    ids = list(account_ids)

    async def reset_all():
        for account_id in ids:
            await reset(account_id)

    asyncio.run(_short_loop(reset_all))


async def _short_loop(work):
    """Run `work` and close the Redis client this loop opened (the loop ends right after)."""
    try:
        return await work()
    finally:
        close = getattr(get_state(), "aclose", None)
        if close is not None:
            await close()
