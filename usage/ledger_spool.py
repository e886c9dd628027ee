"""The ledger's spool files (usage/ledger.py's docstring, "Durability" and "Several processes"): this process's
Spool (append one JSON line per record, fsync per flush, release once committed), the spools of dead processes
(find_orphans, under their flock) and reading them back (read_segments: the last record of a request wins).
"""

import fcntl
import logging
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

import orjson

from .ledger_row import LedgerRow, row_from_json

log = logging.getLogger(__name__)

SEGMENT_BYTES = 4 << 20  # a spool that never empties (always something in flight) rolls over at this size
INTERRUPTED_MESSAGE = "the gateway process ended before the request finished"


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
