"""Requests with a missing, unknown or expired API key: counted, logged sparingly, and throttled per client address.

Nothing here runs for a request whose key is good (the hot path pays one dict lookup: `blocked`). A failure costs:
- a metric increment (`gateway_auth_failures_total{reason}`) — never a ledger row: the ledger is for callers
  we know, and a flood of random keys must not cost storage;
- at most one log line per LOG_EVERY seconds for all failures together (how many, the latest address);
- a count per client address over a window of GATEWAY_AUTH_FAILURE_WINDOW_SECONDS from its first failure. At
  GATEWAY_AUTH_FAILURE_LIMIT failures in a window, that address gets 429 for the next window's length for every
  credential this process does not already know as good (proxy.auth checks `blocked` before a key lookup), so a
  key-guessing client stops costing database lookups. With REDIS_URL the counts are shared (one round trip per
  failure): every process blocks an address at its first failure past the limit. Without Redis, or while it is
  down, each process counts alone.

The address is the ASGI scope's client: behind a proxy, run the server with --proxy-headers (bin/serve does) so
it is the real client's, and let only the proxy reach the gateway (README "Security").
"""

import asyncio
import logging
import time

from django.conf import settings

from usage import metrics

log = logging.getLogger(__name__)

LOG_EVERY = 10.0  # seconds between two log lines about failures
_MAX_TRACKED = 100_000  # addresses remembered per process; past it the oldest window is forgotten at once
REDIS_PREFIX = "gh:authfail:"

_counts: dict[str, tuple[float, int]] = {}  # address -> (monotonic start of its window, failures in it)
_blocked: dict[str, float] = {}  # address -> monotonic time the block ends
_log_state = {"last": 0.0, "suppressed": 0}
_redis = {"client": None, "loop": None, "down_until": 0.0}


def blocked(address: str | None) -> bool:
    if not address or not _blocked:
        return False
    until = _blocked.get(address)
    if until is None:
        return False
    if until <= time.monotonic():
        _blocked.pop(address, None)
        return False
    return True


async def record(address: str | None, reason: str) -> None:
    """One refused request (reason: missing | invalid | expired | throttled)."""
    metrics.auth_failures.labels(reason).inc()
    _log(address, reason)
    if reason == "throttled" or not address or settings.GATEWAY_AUTH_FAILURE_LIMIT <= 0:
        return
    window_s = settings.GATEWAY_AUTH_FAILURE_WINDOW_SECONDS
    count = await _shared_count(address, window_s)
    if count is None:
        count = _local_count(address, window_s)
    if count >= settings.GATEWAY_AUTH_FAILURE_LIMIT:
        if len(_blocked) >= _MAX_TRACKED:
            _blocked.clear()
        _blocked[address] = time.monotonic() + window_s


def count_only(reason: str) -> None:
    """The metric and log line of a failure seen outside an event loop (no address count)."""
    metrics.auth_failures.labels(reason).inc()
    _log(None, reason)


def retry_after() -> str:
    return str(settings.GATEWAY_AUTH_FAILURE_WINDOW_SECONDS)


def _local_count(address: str, window_s: int) -> int:
    """Failures since the address's window began (a window starts at its first failure)."""
    now = time.monotonic()
    started, count = _counts.get(address, (now, 0))
    if now - started > window_s:
        started, count = now, 0
    if len(_counts) >= _MAX_TRACKED:
        _counts.clear()
    _counts[address] = (started, count + 1)
    return count + 1


async def _shared_count(address: str, window_s: int) -> int | None:
    """The address's failures in its current window across every process (the key is created with the window's
    expiry at the first failure), or None without a usable Redis."""
    if not settings.REDIS_URL or time.monotonic() < _redis["down_until"]:
        return None
    try:
        client = _client()
        key = REDIS_PREFIX + address
        async with client.pipeline(transaction=False) as pipe:
            pipe.set(key, 0, ex=window_s, nx=True)
            pipe.incr(key)
            _, count = await pipe.execute()
        return int(count)
    except Exception as exc:  # Redis down or slow: count in this process for a while
        _redis["down_until"] = time.monotonic() + settings.GATEWAY_REDIS_RETRY_SECONDS
        log.warning("auth-failure counts fall back to this process: Redis %s", type(exc).__name__)
        return None


def _client():
    import redis.asyncio as aioredis

    loop = asyncio.get_running_loop()
    if _redis["client"] is None or _redis["loop"] is not loop:  # a client must not cross event loops
        timeout = settings.GATEWAY_REDIS_TIMEOUT
        _redis["client"] = aioredis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        _redis["loop"] = loop
    return _redis["client"]


def _log(address: str | None, reason: str) -> None:
    now = time.monotonic()
    if now - _log_state["last"] < LOG_EVERY:
        _log_state["suppressed"] += 1
        return
    more = _log_state["suppressed"]
    _log_state["last"], _log_state["suppressed"] = now, 0
    log.warning(
        "API request refused (%s key) from %s%s",
        reason,
        address or "unknown address",
        f"; {more} more refused since the last line" if more else "",
    )


def reset_for_tests() -> None:
    _counts.clear()
    _blocked.clear()
    _log_state.update(last=0.0, suppressed=0)
