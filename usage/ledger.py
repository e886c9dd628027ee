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

Adding a ledger column: add the field to usage.models.UsageRecord (with a migration) and to LedgerRow below
(with a default, so older spools still replay), then fill it in proxy/metering.py (Call.row).
tests/unit/test_ledger_spool.py checks that the two field lists match.
"""

import atexit
import fcntl
import hashlib
import logging
import os
import queue
import secrets
import threading
import time
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
from django.conf import settings
from django.db import DataError, IntegrityError, close_old_connections, connection
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from . import metrics

log = logging.getLogger(__name__)

BATCH_MAX = 1000
LAST_USED_EVERY = 60.0
SEGMENT_BYTES = 4 << 20  # a spool that never empties (always something in flight) rolls over at this size
RESCAN_SECONDS = 30.0  # how often a running writer looks for spools of processes that died since it started
STALL_SECONDS = 10.0  # a write that has not succeeded for this long makes the ledger "degraded"
BACKOFF_MAX = 10.0
INTERRUPTED_MESSAGE = "the gateway process ended before the request finished"


@dataclass
class LedgerRow:
    """One UsageRecord, typed: a misspelt field is a TypeError where the row is built, not a row lost at insert."""

    request_id: str
    ingress_api: str
    http_status: int
    outcome: str
    created_at: datetime = field(default_factory=timezone.now)
    project_id: int | None = None
    api_key_id: int | None = None
    alias: str = ""
    requested_model: str = ""
    provider: str = ""
    account: str = ""
    remote_model: str = ""
    upstream_api: str = ""
    stream: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0  # the 1-hour part of cache_write_tokens (usage.pricing)
    cost_usd: Decimal = Decimal(0)
    latency_ms: int = 0
    ttft_ms: int | None = None
    attempts: int = 0
    error_type: str = ""
    error_message: str = ""
    user_agent: str = ""
    batch_id: str = ""
    session_id: str = ""
    route_rule: str = ""
    reductions: str = ""
    tokens_saved: int = 0
    saved_usd: Decimal = Decimal(0)


def usage_fields(usage) -> dict:
    """A row's token columns from a usage object (proxy.canonical.Usage): the one mapping for live traffic, batch
    items (both through proxy.metering) and native batch results (batches/native.py)."""
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "cache_read_tokens": usage.cache_read_tokens, "cache_write_tokens": usage.cache_write_tokens,
            "cache_write_1h_tokens": usage.cache_write_1h_tokens}  # fmt: skip


def error_fields(error) -> dict:
    """A row's error columns from a proxy.errors.GatewayError, or none."""
    if error is None:
        return {"error_type": "", "error_message": ""}
    return {"error_type": error.kind, "error_message": error.message[:300]}


_ROW_FIELDS = {f.name: f for f in fields(LedgerRow)}
_DECIMALS = ("cost_usd", "saved_usd")


def _encode(kind: str, row: LedgerRow | None = None, request_id: str = "") -> bytes:
    record = {"k": kind, "row": row} if row is not None else {"k": kind, "id": request_id}
    return orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE)


def row_from_json(data: dict) -> LedgerRow:
    """A spooled row back into a LedgerRow. Fields this version does not know are dropped (a newer spool)."""
    values = {k: v for k, v in data.items() if k in _ROW_FIELDS}
    if isinstance(values.get("created_at"), str):
        values["created_at"] = parse_datetime(values["created_at"])
    for name in _DECIMALS:
        if name in values:
            values[name] = Decimal(str(values[name]))
    return LedgerRow(**values)


# --- the spool: this process's files ----------------------------------------------------------------------


class Spool:
    """Append-only JSON lines in `<directory>/<owner>.<seq>.spool`, owned through an flock on `<owner>.lock`.

    Each request's latest record is its *anchor*: the segment holding it stays until that request's final row
    is committed. Appends come from request threads; only the writer thread closes, truncates or deletes."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.dir = directory
        self.owner = f"{os.getpid()}-{secrets.token_hex(4)}"
        # Locked before it is visible under its name, so another process never sees it unlocked while we live.
        hidden = self.dir / f".{self.owner}.lock.tmp"
        self._lock_fd = os.open(hidden, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(hidden, self.dir / f"{self.owner}.lock")
        self._mutex = threading.Lock()
        self._fds: dict[int, int] = {}
        self._pending: dict[int, int] = {}  # segment -> requests whose latest record is there, not yet committed
        self._anchor: dict[str, int] = {}  # request id -> segment of its latest record (requests in flight)
        self._seq, self._size, self._synced = -1, 0, True
        self._roll()

    def path(self, seq: int) -> Path:
        return self.dir / f"{self.owner}.{seq:06d}.spool"

    def _roll(self) -> None:
        self._seq += 1
        self._fds[self._seq] = os.open(self.path(self._seq), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._pending[self._seq], self._size = 0, 0

    def append(self, request_id: str, line: bytes, final: bool) -> int:
        """Write one record; returns the segment that now holds the request (commit it there when final)."""
        with self._mutex:
            if self._size >= SEGMENT_BYTES:
                self._roll()
            _write_all(self._fds[self._seq], line)
            self._size += len(line)
            self._synced = False
            seq = self._seq
            old = self._anchor.pop(request_id, None) if final else self._anchor.get(request_id)
            if old != seq:
                self._pending[seq] += 1
                if old is not None:
                    self._pending[old] -= 1
            if not final:
                self._anchor[request_id] = seq
            return seq

    def committed(self, seqs) -> None:
        with self._mutex:
            for seq in seqs:
                self._pending[seq] -= 1

    def maintain(self) -> None:
        """Writer thread: fsync what was appended, then drop what every request in it no longer needs."""
        with self._mutex:
            fd, synced = self._fds[self._seq], self._synced
            self._synced = True
        if not synced:
            os.fsync(fd)
        with self._mutex:
            for seq in [s for s, n in self._pending.items() if n == 0]:
                if seq != self._seq:
                    os.close(self._fds.pop(seq))
                    del self._pending[seq]
                    self.path(seq).unlink(missing_ok=True)
                elif self._size:
                    os.ftruncate(self._fds[seq], 0)
                    self._size = 0

    def idle(self) -> bool:
        with self._mutex:
            return not any(self._pending.values())

    def close(self) -> None:
        """Release the spool: its files go when nothing in them is uncommitted, else they stay for a replay."""
        with self._mutex:
            clean = not any(self._pending.values())
            for seq, fd in self._fds.items():
                os.close(fd)
                if clean:
                    self.path(seq).unlink(missing_ok=True)
            self._fds.clear()
            if clean:
                (self.dir / f"{self.owner}.lock").unlink(missing_ok=True)
            os.close(self._lock_fd)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


# --- orphans: spools of dead processes --------------------------------------------------------------------


@dataclass
class Orphan:
    """A dead process's spool, locked by us until its rows are committed."""

    owner: str
    directory: Path
    lock_fd: int
    rows: list[LedgerRow]
    pending: int = 0

    def done(self) -> None:
        for path in self.directory.glob(f"{self.owner}.*.spool"):
            path.unlink(missing_ok=True)
        (self.directory / f"{self.owner}.lock").unlink(missing_ok=True)
        os.close(self.lock_fd)


def find_orphans(directory: Path, own: str | None) -> list[Orphan]:
    """Spools whose owner's lock is free (the owner died), each read into rows and locked by us."""
    owners = {p.name.split(".")[0] for p in directory.glob("*.spool")} | {p.stem for p in directory.glob("*.lock")}
    found = []
    for owner in sorted(owners - {own}):
        fd = os.open(directory / f"{owner}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # alive, or another process is replaying it
            continue
        if os.fstat(fd).st_nlink == 0:  # replayed and removed by another process meanwhile
            os.close(fd)
            continue
        segments = sorted(directory.glob(f"{owner}.*.spool"))
        found.append(Orphan(owner, directory, fd, read_segments(segments)))
    return found


def read_segments(paths: list[Path]) -> list[LedgerRow]:
    """The rows a dead process's spool stands for: each request's last record; a snapshot becomes interrupted."""
    latest: dict[str, tuple[str, dict | None]] = {}
    for path in paths:
        with path.open("rb") as f:
            for number, line in enumerate(f, 1):
                try:
                    record = orjson.loads(line)
                    row = record.get("row")
                    request_id = row["request_id"] if row else record["id"]
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    log.warning("ledger spool %s line %d is not a record (cut by a crash?); skipped", path.name, number)
                    continue
                latest.pop(request_id, None)  # keep the order of last appearance
                latest[request_id] = (record["k"], row)
    rows = []
    for kind, data in latest.values():
        if kind == "x" or data is None:  # discarded: a call that was not part of the ledger
            continue
        row = row_from_json(data)
        if kind == "s":
            row.outcome, row.error_type, row.error_message = "interrupted", "api_error", INTERRUPTED_MESSAGE
        rows.append(row)
    return rows


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
        UsageRecord.objects.bulk_create([UsageRecord(**vars(row)) for row in rows])
    except (IntegrityError, DataError):
        for row in rows:  # one bad row must not hold back the others
            _insert_alone(row)


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
    from .models import UsageRecord

    for attempt in (row, _unlinked(row)):
        try:
            UsageRecord.objects.bulk_create([UsageRecord(**vars(attempt))])
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
            f.write(_encode("f", row))
    except OSError:
        log.error("the database refused usage record %s (%s): %s", row.request_id, error, _encode("f", row))
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
            row.request_id, _encode("s", row), final=False
        )
    except Exception:
        log.exception("ledger snapshot failed")


def discard(request_id: str) -> None:
    """A call that snapshotted but is not part of the ledger after all (token counting)."""
    writer = start()
    seq = writer.append(request_id, _encode("x", request_id=request_id), final=True)
    if seq is not None and writer.spool is not None:
        writer.spool.committed([seq])


def record(row: LedgerRow) -> None:
    """Hand over a finished request's row. Never blocks on the database, never raises."""
    writer = _writer if _writer is not None and _writer.thread.is_alive() else start()
    token = None
    try:
        token = writer.append(row.request_id, _encode("f", row), final=True)
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
