"""The live request feed: each finished request, pushed to the staff watching the admin's live page.

proxy.metering calls `publish` as a request finishes. It sits on the request path, so:

- **Nobody watching costs a clock read.** Every open feed socket (usage.consumers) registers as a watcher: in a
  Redis sorted set scored by its last heartbeat when REDIS_URL is set (so a process serving a request knows a
  socket on another process is open), in a process counter otherwise (the in-memory channel layer only reaches
  this process's sockets anyway). With Redis, `publish` reads a flag that a background task refreshes at most
  once per CHECK_SECONDS; without, it compares the counter.
- **A slow or dead layer never holds up a request.** Delivery is a task of its own (`group_send` on the
  channel layer, bounded by SEND_TIMEOUT); at most MAX_PENDING run at once. An event past that, a timeout or a
  layer error is dropped and counted (gateway_live_feed_dropped_total{reason}); the request never waits and
  never sees an error. A Redis that cannot be reached reads as "nobody watching".

The event is what the page shows and nothing more: no prompt, no key secret (the key's visible prefix only).
"""

import asyncio
import logging
import time
import weakref

from channels.layers import get_channel_layer
from django.conf import settings

from . import metrics
from .money import cents, exact

log = logging.getLogger(__name__)

GROUP = "usage.live"
WATCHERS_KEY = "gh:feed:watchers"
CHECK_SECONDS = 1.0  # how often a process asks Redis whether anyone watches
HEARTBEAT_SECONDS = 15.0  # a socket refreshes its entry this often ...
STALE_SECONDS = 45.0  # ... and one not refreshed for this long (its process died) is no watcher
SEND_TIMEOUT = 0.5
REDIS_TIMEOUT = 0.5
MAX_PENDING = 100

_local_watchers = 0
_watching = False
_checked_at = -CHECK_SECONDS
_pending: set[asyncio.Task] = set()
_clients: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # event loop -> redis.asyncio client
_redis_url: str | None = None


def publish(call, status: int, outcome: str, cost, elapsed_s: float) -> None:
    """Hand one finished request to the watchers, if any. Never blocks, never raises."""
    if not _watched():
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return  # not on an event loop (a synchronous caller): nobody's page is on this thread's loop
    if len(_pending) >= MAX_PENDING:
        metrics.feed_dropped.labels("backlog").inc()
        return
    try:
        task = loop.create_task(_send(event(call, status, outcome, cost, elapsed_s)))
    except Exception:
        log.exception("live feed: could not build an event")
        return
    _pending.add(task)
    task.add_done_callback(_pending.discard)


def event(call, status: int, outcome: str, cost, elapsed_s: float) -> dict:
    usage = call.usage
    return {
        "time": call.created_at.isoformat(),
        "request_id": call.request_id,
        "project": call.key.project_slug if call.key is not None else "",
        "key": call.key.prefix if call.key is not None else "",
        "api": call.ingress,
        "model": call.alias,
        "remote_model": call.remote_model,
        "provider": call.provider,
        "stream": call.stream,
        "status": status,
        "outcome": outcome,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "cost_usd": exact(cost),  # fixed point, never 0E-8 (usage/money.py)
        "cost": cents(cost),  # what the page shows; the exact amount is its hover title
        "latency_ms": int(elapsed_s * 1000),
        "ttft_ms": call.ttft_ms,
    }


async def _send(message: dict) -> None:
    try:
        layer = get_channel_layer()
        await asyncio.wait_for(layer.group_send(GROUP, {"type": "request.finished", "event": message}), SEND_TIMEOUT)
    except asyncio.TimeoutError:
        metrics.feed_dropped.labels("timeout").inc()
    except Exception:
        metrics.feed_dropped.labels("error").inc()


# --- who watches ------------------------------------------------------------------------------------------


def _url() -> str:
    global _redis_url
    if _redis_url is None:
        _redis_url = settings.REDIS_URL  # read once: Django's lazy settings cost a few µs on every access
    return _redis_url


def _watched() -> bool:
    global _checked_at
    if not _url():
        return _local_watchers > 0
    now = time.monotonic()
    if now - _checked_at >= CHECK_SECONDS:  # a check ends within REDIS_TIMEOUT, so checks never overlap
        _checked_at = now
        try:
            task = asyncio.get_running_loop().create_task(_refresh())
        except RuntimeError:
            return _watching
        _pending.add(task)
        task.add_done_callback(_pending.discard)
    return _watching


async def _refresh() -> None:
    global _watching
    try:
        count = await asyncio.wait_for(_client().zcount(WATCHERS_KEY, time.time() - STALE_SECONDS, "+inf"), REDIS_TIMEOUT)
        _watching = count > 0
    except Exception:
        _watching = False  # a Redis we cannot reach has no watchers we could reach either


def _client():
    import redis.asyncio as aioredis

    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = aioredis.Redis.from_url(_url(), socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT)
        _clients[loop] = client
    return client


async def watcher_joined(channel_name: str) -> None:
    """A feed socket opened (and, with Redis, every HEARTBEAT_SECONDS while it stays open)."""
    global _local_watchers, _watching, _checked_at
    if not _url():
        _local_watchers += 1
        return
    try:
        client = _client()
        await asyncio.wait_for(client.zadd(WATCHERS_KEY, {channel_name: time.time()}), REDIS_TIMEOUT)
        await asyncio.wait_for(client.zremrangebyscore(WATCHERS_KEY, "-inf", time.time() - STALE_SECONDS), REDIS_TIMEOUT)
    except Exception:
        log.warning("live feed: could not register a watcher in Redis")
    _watching, _checked_at = True, time.monotonic()  # this process publishes at once, others within CHECK_SECONDS


async def watcher_heartbeat(channel_name: str) -> None:
    if _url():
        try:
            await asyncio.wait_for(_client().zadd(WATCHERS_KEY, {channel_name: time.time()}), REDIS_TIMEOUT)
        except Exception:
            pass


async def watcher_left(channel_name: str) -> None:
    global _local_watchers
    if not _url():
        _local_watchers = max(0, _local_watchers - 1)
        return
    try:
        await asyncio.wait_for(_client().zrem(WATCHERS_KEY, channel_name), REDIS_TIMEOUT)
    except Exception:
        pass  # the entry goes stale after STALE_SECONDS
