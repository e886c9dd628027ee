"""The usage ledger writer: requests hand over a finished record and never wait for the database.

`record()` puts a dict on an in-process queue; one writer thread bulk-inserts whatever accumulated during
GATEWAY_LEDGER_FLUSH_SECONDS (one INSERT for hundreds of requests under load) and refreshes keys' last_used_at at
most once a minute each. On a graceful shutdown (SIGTERM/SIGINT end the server, then atexit) the queue is drained
before the process exits, so nothing recorded is lost; a hard kill loses at most one flush interval.
"""

import atexit
import logging
import queue
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import Q

from . import metrics

log = logging.getLogger(__name__)

_queue: "queue.SimpleQueue" = queue.SimpleQueue()
_thread: threading.Thread | None = None
_start_lock = threading.Lock()
_key_touched: dict[int, float] = {}
BATCH_MAX = 1000
LAST_USED_EVERY = 60.0


class _Flush:
    def __init__(self):
        self.done = threading.Event()


_STOP = object()


def record(fields: dict) -> None:
    """Queue one UsageRecord (field name -> value). Never blocks, never raises."""
    _ensure_writer()
    _queue.put(fields)


def flush(timeout: float = 10.0) -> bool:
    """Block until everything queued before this call is in the database (tests, shutdown)."""
    if _thread is None or not _thread.is_alive():
        return _queue.empty()
    marker = _Flush()
    _queue.put(marker)
    return marker.done.wait(timeout)


def _ensure_writer() -> None:
    global _thread
    if _thread is not None and _thread.is_alive():
        return
    with _start_lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="ledger-writer", daemon=True)
            _thread.start()


def _run() -> None:
    while True:
        item = _queue.get()
        batch, markers = [], []
        deadline = time.monotonic() + settings.GATEWAY_LEDGER_FLUSH_SECONDS
        stop = False
        while True:
            if item is _STOP:
                stop = True
            elif isinstance(item, _Flush):
                markers.append(item)
            else:
                batch.append(item)
            if stop or markers or len(batch) >= BATCH_MAX:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = _queue.get(timeout=remaining)
            except queue.Empty:
                break
        if batch:
            _write(batch)
        for marker in markers:
            marker.done.set()
        if stop:
            connection.close()
            return


def _write(batch: list[dict]) -> None:
    from .models import UsageRecord

    for attempt in (1, 2):
        try:
            close_old_connections()
            UsageRecord.objects.bulk_create([UsageRecord(**fields) for fields in batch])
            break
        except Exception:
            connection.close()  # a broken connection is replaced on the next try
            if attempt == 2:
                log.exception("could not write %d usage records", len(batch))
                metrics.ledger_dropped.inc(len(batch))
                return
            time.sleep(0.5)
    _touch_keys(batch)


def _touch_keys(batch: list[dict]) -> None:
    from accounts.models import ApiKey

    now = time.monotonic()
    latest: dict[int, object] = {}
    for fields in batch:
        key_id = fields.get("api_key_id")
        if key_id and now - _key_touched.get(key_id, -LAST_USED_EVERY) >= LAST_USED_EVERY:
            latest[key_id] = fields["created_at"]
    for key_id, used_at in latest.items():
        try:
            stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=used_at - timedelta(seconds=LAST_USED_EVERY))
            ApiKey.objects.filter(Q(id=key_id) & stale).update(last_used_at=used_at)
            _key_touched[key_id] = now
        except Exception:
            log.exception("could not update last_used_at")


def stop(timeout: float = 15.0) -> None:
    """Write what is queued, then end the writer (it starts again on the next record)."""
    if _thread is not None and _thread.is_alive():
        _queue.put(_STOP)
        _thread.join(timeout=timeout)


atexit.register(stop)
