"""Running a chunk of a batch's items: each one through the request core as the batch's key (the same routing,
translation, limits, budgets and ledger as live traffic), a few at a time, in an event loop of the chunk's own.

The order that makes a worker crash safe (with acks late, batches/tasks.py):
    claim      the items, each under a fresh request id and a lease (services.claim_items)
    run        core.run_to_end(..., request_id=the item's, batch_id=the batch's): one ledger row per item,
               durable once the call returns (usage.ledger spools it before the database has it)
    complete   the item's answer, at once (services.complete_items)
A worker killed mid-call leaves its item `running`: after the lease the task comes back (redelivered) and runs
it again under a new request id; the lost call's row is replayed from the dead worker's spool as `interrupted`
(the upstream may have billed it). Killed between the row and the answer: the replayed row says the item ran,
so it is not run again (services._recorded_before_crash) — it ends errored, its answer lost, counted once.

Batch items yield to live traffic: a refusal by the key's rate or concurrency limits (or every upstream account
being busy) is not an item error; the item goes back to pending and the task retries after the `retry-after`.
Before that point, items pause while the key's limits are down to the reserve kept for live requests
(batches/headroom.py).
"""

import asyncio
import threading

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

from accounts.keys import key_by_id
from proxy import core, formats
from proxy.errors import AuthenticationFailed, GatewayError
from proxy.upstreams import http

from . import headroom, services
from .models import Batch

WAIT_KINDS = ("rate_limit", "overloaded")  # the key's limits or busy upstreams: wait, do not fail
MIN_WAIT, MAX_WAIT = 0.5, 60.0


_local = threading.local()  # one event loop per worker process (or embedded runner thread), kept between tasks


def run_chunk(batch_id: str, item_ids: list[int]) -> float:
    """Run these items to their end. Returns how long to wait before coming back for the ones left (refused by a
    limit, or held by another worker's lease); 0 when none is left.

    The loop outlives the task, so upstream connections (proxy.upstreams.http, per loop) and the database
    connection are reused by the next chunk: a new loop per task cost about a third of the worker's CPU per item."""
    loop = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = _local.loop = asyncio.new_event_loop()
    return loop.run_until_complete(_run_checked(batch_id, item_ids))


def close_loop() -> None:
    """End this thread's loop and its upstream connections (an embedded runner thread, when its batch ends)."""
    loop = getattr(_local, "loop", None)
    if loop is not None and not loop.is_closed():
        loop.run_until_complete(http.close_all())
        loop.close()


async def _run_checked(batch_id: str, item_ids: list[int]) -> float:
    await sync_to_async(_drop_broken_connections)()
    return await _run(batch_id, item_ids)


def _drop_broken_connections() -> None:
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and not conn.is_usable():
            conn.close()


async def _run(batch_id: str, item_ids: list[int]) -> float:
    claimed, wait = await sync_to_async(services.claim_items)(batch_id, item_ids)
    if not claimed:
        return wait
    batch = await Batch.objects.only("id", "api_key_id", "ingress_api").aget(id=batch_id)
    key = await sync_to_async(key_by_id)(batch.api_key_id) if batch.api_key_id else None
    limit = asyncio.Semaphore(settings.GATEWAY_BATCH_ITEM_CONCURRENCY)
    outcomes = await asyncio.gather(*(_one(key, batch, item, limit) for item in claimed))
    refused = [(item, after) for item, fields, after in outcomes if not fields]
    if refused:
        await sync_to_async(services.release_items)([item for item, _ in refused])
        wait = max(wait, *(after for _, after in refused))
    return wait


async def _one(key, batch: Batch, item, limit: asyncio.Semaphore):
    """(item, outcome fields, 0), or (item, None, seconds to wait) when a limit refused it or live traffic needs
    the rest of the key's limits (batches/headroom.py)."""
    async with limit:
        paused = await sync_to_async(headroom.paused_for)(key.id) if _limited(key) else 0.0
        fields, wait = (None, paused) if paused else await _call(key, batch, item)
    if fields:
        await sync_to_async(services.complete_items)([(item, fields)])  # at once: see the module docstring
    return item, fields, wait


async def _call(key, batch: Batch, item) -> tuple[dict | None, float]:
    try:
        if key is None:
            raise AuthenticationFailed("the API key that created this batch was revoked or deleted")
        result = await core.run_to_end(key, batch.ingress_api, item.body, request_id=item.request_id,
                                       batch_id=batch.id)
        if _limited(key):
            await sync_to_async(headroom.observe)(key.id, result.headers)
        return {"status": "succeeded", "status_code": result.status, "result": orjson.loads(result.content)}, 0.0
    except GatewayError as err:
        if err.kind in WAIT_KINDS:
            return None, _retry_after(err)
        status, content, _ = formats.get(batch.ingress_api).render_error(err)
        return {"status": "errored", "status_code": status, "result": orjson.loads(content),
                "error_type": err.kind, "error_message": err.message[:1000]}, 0.0


def _limited(key) -> bool:
    """Whether the key or its project has a rate limit live traffic could run out of."""
    return key is not None and any((key.key_rpm, key.key_tpm, key.project_rpm, key.project_tpm))


def _retry_after(err: GatewayError) -> float:
    raw = err.retry_after or err.headers.get("retry-after") or ""
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 1.0
    return min(MAX_WAIT, max(MIN_WAIT, seconds))
