"""The usage ledger writer: a request never waits for the database, and no row is lost or written twice.

    request path                         writer thread ("ledger-writer")             next start-up
    ------------                         -------------------------------             -------------
    snapshot(row)  upstream called  ─┐
    snapshot(row)  once a second     ├─> spool file (append, one line)
    record(row)    request ended   ──┘   + queue ──> bulk INSERT ──> spool released   dead spools replayed

Durability. Every record is first appended to this process's spool file (`<GATEWAY_DATA_DIR>/ledger/<db>/`), one
JSON line written with a single os.write: once the call returns the bytes are in the kernel, so a SIGKILL or
the OOM killer loses nothing. The writer thread fsyncs the spool once per flush cycle (not per request), so a
power cut or kernel crash loses at most the last GATEWAY_LEDGER_FLUSH_SECONDS. A spool is truncated (or, when
it outgrew SEGMENT_BYTES, deleted) only once every row in it is committed.

Snapshots. When a request first calls an upstream, and then at most once a second while it streams, its row
so far is appended as a snapshot (proxy/metering.py). The last record of a request wins at replay: a finished
row is inserted as it is, a bare snapshot becomes an `interrupted` row with the usage and cost last known.

Several processes, one data dir. Each process owns a spool under a name of its own (pid + random) and holds an
flock on `<owner>.lock` for its lifetime; the kernel releases it when the process dies, however it dies. At
start (and every RESCAN_SECONDS) the writer adopts any spool whose lock it can take: that owner is dead.
Replay skips request ids the ledger already has, so a spool replayed twice (a crash during replay) or a batch
retried after an unclear commit inserts nothing twice. The ledger table needs no unique constraint for this:
only the process holding a spool's lock writes its rows.

Database down. Rows stay in memory and in the spool; the writer retries with exponential backoff (to 10 s),
forever. `status()` (shown by /ready) turns "degraded" while writes fail or stall. A row the database refuses
for good (a constraint, bad data) is retried without its project/key links, then kept in
`rejected.jsonl` next to the spools, with an error in the log: never dropped silently.

The row itself (LedgerRow, and how to add a column) is usage/ledger_row.py; the spool files are
usage/ledger_spool.py; this module is the writer thread and the API the request path calls.
"""

import atexit
import hashlib
import logging
import os
import queue
import threading
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import DataError, IntegrityError, close_old_connections, connection, transaction
from django.db.models import Q

from . import metrics
from .ledger_row import LedgerRow, columns, encode
from .ledger_spool import Orphan, Spool, find_orphans

log = logging.getLogger(__name__)

BATCH_MAX = 1000
LAST_USED_EVERY = 60.0
RESCAN_SECONDS = 30.0  # how often a running writer looks for spools of processes that died since it started
STALL_SECONDS = 10.0  # a write that has not succeeded for this long makes the ledger "degraded"
BACKOFF_MAX = 10.0


# --- the writer ---------------------------------------------------------------------------------------------


class _Flush:
    def __init__(self):
        self.done = threading.Event()


_STOP = object()


class Writer:
    """One per process: owns the spool, the queue, and the thread that writes rows to the database."""

    def __init__(self, directory: Path):
        self.queue: "queue.SimpleQueue" = queue.SimpleQueue()
        self.directory = directory
        self.spool: Spool | None = None
        self.spool_error: str = ""
        try:
            self.spool = Spool(directory)
        except OSError as exc:
            self.spool_error = f"cannot write the ledger spool in {directory}: {exc}"
            log.error("%s; ledger rows are kept in memory only until the spool is writable", self.spool_error)
        self.backlog: list[tuple[LedgerRow, object]] = []  # (row, token): token is a spool segment or an Orphan
        self.markers: list[_Flush] = []
        self.failures = 0
        self.last_error = ""
        self.stalled_since: float | None = None
        self.retry_at = 0.0
        self.retrying = False  # the batch may have been committed by a failed attempt: check before inserting
        self.key_touched: dict[int, float] = {}
        self.next_scan = 0.0
        self.thread = threading.Thread(target=self.run, name="ledger-writer", daemon=True)

    # request side -----------------------------------------------------------------------------------------

    def append(self, request_id: str, line: bytes, final: bool):
        if self.spool is None:
            return None
        try:
            seq = self.spool.append(request_id, line, final)
        except OSError as exc:
            self.spool_error = f"ledger spool write failed: {exc}"
            log.error("%s (the row is kept in memory)", self.spool_error)
            return None
        if self.spool_error:  # the disk is back (it was full, say)
            self.spool_error = ""
        return seq

    # writer thread ----------------------------------------------------------------------------------------

    def run(self) -> None:
        while True:
            try:
                stop = self.cycle()
            except Exception:  # a bug here must not stop the writer: its rows would wait until the next start
                log.exception("ledger writer cycle failed")
                time.sleep(1.0)
                continue
            if stop:
                self.finish()
                return

    def cycle(self) -> bool:
        if time.monotonic() >= self.next_scan:
            self.adopt_orphans()
        stop = self.collect()
        if self.backlog and (stop or time.monotonic() >= self.retry_at):
            self.write_backlog()
        if not self.backlog:
            for marker in self.markers:
                marker.done.set()
            self.markers.clear()
        self.maintain_spool()
        return stop

    def collect(self) -> bool:
        """Gather what is queued: wait for a first item, then for GATEWAY_LEDGER_FLUSH_SECONDS more."""
        now = time.monotonic()
        if self.backlog:
            wait = max(0.0, self.retry_at - now)
        else:
            wait = max(0.0, self.next_scan - now)
        try:
            item = self.queue.get(timeout=wait) if wait else self.queue.get_nowait()
        except queue.Empty:
            return False
        deadline = time.monotonic() + settings.GATEWAY_LEDGER_FLUSH_SECONDS
        while True:
            if item is _STOP:
                return True
            if isinstance(item, _Flush):
                self.markers.append(item)
            else:
                self.backlog.append(item)
            if self.markers or len(self.backlog) >= BATCH_MAX:
                return False
            remaining = deadline - time.monotonic()
            try:
                item = self.queue.get(timeout=remaining) if remaining > 0 else self.queue.get_nowait()
            except queue.Empty:
                return False

    def write_backlog(self) -> None:
        while self.backlog:
            batch = self.backlog[:BATCH_MAX]
            self.stalled_since = self.stalled_since or time.monotonic()
            try:
                _insert([row for row, _ in batch], check_existing=self.retrying)
            except Exception as exc:
                self.failed(exc)
                return
            del self.backlog[: len(batch)]
            self.committed(batch)
        self.failures, self.retrying, self.stalled_since, self.last_error = 0, False, None, ""
        metrics.ledger_backlog.set(0)

    def failed(self, exc: Exception) -> None:
        connection.close()  # a broken connection is replaced on the next try
        self.failures += 1
        self.retrying = True
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        delay = min(BACKOFF_MAX, 0.5 * 2 ** (self.failures - 1))
        self.retry_at = time.monotonic() + delay
        metrics.ledger_dropped.inc(len(self.backlog[:BATCH_MAX]))  # not written this time; kept and retried
        metrics.ledger_backlog.set(len(self.backlog))
        level = logging.WARNING if self.failures < 4 else logging.ERROR
        log.log(level, "could not write %d usage records (%s); kept, retrying in %.1f s", len(self.backlog),
                self.last_error, delay)  # fmt: skip

    def committed(self, batch) -> None:
        seqs = []
        for _row, token in batch:
            if isinstance(token, Orphan):
                token.pending -= 1
                if token.pending == 0:
                    token.done()
            elif token is not None:
                seqs.append(token)
        if seqs and self.spool is not None:
            self.spool.committed(seqs)
        self.touch_keys([row for row, _ in batch])

    def maintain_spool(self) -> None:
        if self.spool is None:
            return
        try:
            self.spool.maintain()
        except OSError as exc:
            self.spool_error = f"ledger spool maintenance failed: {exc}"
            log.error(self.spool_error)

    def adopt_orphans(self) -> None:
        self.next_scan = time.monotonic() + RESCAN_SECONDS
        if not self.directory.is_dir():
            return
        try:
            orphans = find_orphans(self.directory, self.spool.owner if self.spool else None)
        except OSError as exc:
            log.error("could not read the ledger spools of stopped processes: %s", exc)
            return
        for orphan in orphans:
            if not orphan.rows:
                orphan.done()
                continue
            log.warning("replaying %d ledger records left by process %s", len(orphan.rows), orphan.owner)
            orphan.pending = len(orphan.rows)
            self.backlog[:0] = [(row, orphan) for row in orphan.rows]
            self.retrying = True  # some of them may be in the database already

    def finish(self) -> None:
        if self.backlog:
            log.error("%d usage records could not be written before exit; they stay in %s for the next start",
                      len(self.backlog), self.directory)  # fmt: skip
        for marker in self.markers:
            marker.done.set()
        if self.spool is not None:
            self.spool.close()
        for _row, token in self.backlog:
            if isinstance(token, Orphan) and token.lock_fd >= 0:
                os.close(token.lock_fd)
                token.lock_fd = -1
        connection.close()

    def touch_keys(self, rows: list[LedgerRow]) -> None:
        from accounts.models import ApiKey

        now = time.monotonic()
        latest: dict[int, object] = {}
        for row in rows:
            if row.api_key_id and now - self.key_touched.get(row.api_key_id, -LAST_USED_EVERY) >= LAST_USED_EVERY:
                latest[row.api_key_id] = row.created_at
        for key_id, used_at in latest.items():
            try:
                stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=used_at - timedelta(seconds=LAST_USED_EVERY))
                ApiKey.objects.filter(Q(id=key_id) & stale).update(last_used_at=used_at)
                self.key_touched[key_id] = now
            except Exception:
                log.exception("could not update last_used_at")

    def status(self) -> dict:
        stalled = self.stalled_since is not None and time.monotonic() - self.stalled_since > STALL_SECONDS
        degraded = bool(self.failures or stalled or self.spool_error)
        return {
            "status": "degraded" if degraded else "ok",
            "backlog": len(self.backlog) + self.queue.qsize(),
            "error": self.spool_error or self.last_error,
        }


def _insert(rows: list[LedgerRow], check_existing: bool) -> None:
    """One bulk INSERT; `check_existing` leaves out request ids already in the ledger (a replay, a retry)."""
    from .models import UsageRecord

    close_old_connections()
    _bound_lock_waits()
    if check_existing:
        ids = [row.request_id for row in rows]
        existing = set(UsageRecord.objects.filter(request_id__in=ids).values_list("request_id", flat=True))
        rows = [row for row in rows if row.request_id not in existing]
    try:
        _insert_with_logs(rows)
    except (IntegrityError, DataError):
        for row in rows:  # one bad row must not hold back the others
            _insert_alone(row)


def _insert_with_logs(rows: list[LedgerRow]) -> None:
    """The rows and their request logs (usage/request_logs.py) in one transaction: both are written, or neither
    and the spool keeps both for the retry."""
    from . import request_logs
    from .models import UsageRecord

    with transaction.atomic():
        UsageRecord.objects.bulk_create([UsageRecord(**columns(row)) for row in rows])
        request_logs.logs_insert(rows)


def _bound_lock_waits() -> None:
    """A locked ledger table must fail the write (and be retried with backoff, /ready degraded), not hang the
    writer for SQLite's 20 s busy timeout or forever on a PostgreSQL lock."""
    connection.ensure_connection()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA busy_timeout = 1000")
        elif connection.vendor == "postgresql":  # and a server that stopped answering fails within 30 s
            cursor.execute("SELECT set_config('lock_timeout', '2s', false), "
                           "set_config('statement_timeout', '30s', false)")


def _insert_alone(row: LedgerRow) -> None:
    for attempt in (row, _unlinked(row)):
        try:
            _insert_with_logs([attempt])
            if attempt is not row:
                log.warning("usage record %s written without its project/key (deleted?)", row.request_id)
            return
        except (IntegrityError, DataError) as exc:
            error = exc
    _reject(row, error)


def _unlinked(row: LedgerRow) -> LedgerRow:
    values = vars(row) | {"project_id": None, "api_key_id": None}
    return LedgerRow(**values)


def _reject(row: LedgerRow, error: Exception) -> None:
    path = spool_dir() / "rejected.jsonl"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as f:
            f.write(encode("f", row))
    except OSError:
        log.error("the database refused usage record %s (%s): %s", row.request_id, error, encode("f", row))
        return
    log.error("the database refused usage record %s (%s); kept in %s", row.request_id, error, path)


# --- the module's API -------------------------------------------------------------------------------------

_writer: Writer | None = None
_start_lock = threading.Lock()


def spool_dir() -> Path:
    """One spool directory per database, so rows are never replayed into another database than their own
    (a data dir reused with a new DATABASE_URL, test databases)."""
    db = settings.DATABASES["default"]
    identity = f"{db['ENGINE']}|{db.get('HOST') or ''}|{db.get('PORT') or ''}|{db['NAME']}"
    return Path(settings.DATA_DIR) / "ledger" / hashlib.sha256(identity.encode()).hexdigest()[:12]


def start() -> Writer:
    """Start the writer (idempotent). The servers (gateway_site/server.py, the ASGI lifespan) and Celery's pool
    processes (gateway_site/celery.py) call it as they start, so dead processes' spools are replayed at once;
    anywhere else the first record starts it."""
    global _writer
    writer = _writer
    if writer is not None and writer.thread.is_alive():
        return writer
    with _start_lock:
        if _writer is None or not _writer.thread.is_alive():
            _writer = Writer(spool_dir())
            _writer.thread.start()
        return _writer


def snapshot(row: LedgerRow) -> None:
    """The row so far of a request still running; replayed as `interrupted` if the process dies before it ends."""
    try:
        (_writer if _writer is not None and _writer.thread.is_alive() else start()).append(
            row.request_id, encode("s", row), final=False
        )
    except Exception:
        log.exception("ledger snapshot failed")


def discard(request_id: str) -> None:
    """A call that snapshotted but is not part of the ledger after all (token counting)."""
    writer = start()
    seq = writer.append(request_id, encode("x", request_id=request_id), final=True)
    if seq is not None and writer.spool is not None:
        writer.spool.committed([seq])


def record(row: LedgerRow) -> None:
    """Hand over a finished request's row (with its `request_log`, if any: in the same spool line, so a crash
    loses neither). Never blocks on the database, never raises."""
    writer = _writer if _writer is not None and _writer.thread.is_alive() else start()
    token = None
    try:
        token = writer.append(row.request_id, encode("f", row), final=True)
    except Exception:
        log.exception("ledger spool append failed")
    writer.queue.put((row, token))


def flush(timeout: float = 10.0) -> bool:
    """Block until everything recorded before this call is in the database (tests, shutdown)."""
    writer = _writer
    if writer is None or not writer.thread.is_alive():
        return True
    marker = _Flush()
    writer.queue.put(marker)
    return marker.done.wait(timeout) and not writer.backlog


def status() -> dict:
    """For /ready: "ok", or "degraded" while rows cannot reach the database (they wait in the spool)."""
    writer = _writer
    if writer is None:
        return {"status": "ok", "backlog": 0, "error": ""}
    return writer.status()


def stop(timeout: float = 15.0) -> None:
    """Write what is queued (one last try if the database is failing), then end the writer; what could not be
    written stays in the spool for the next start. The writer starts again on the next record."""
    writer = _writer
    if writer is not None and writer.thread.is_alive():
        writer.queue.put(_STOP)
        writer.thread.join(timeout=timeout)


atexit.register(stop)
