"""GATEWAY_WORKERS: several server processes on one listening port, so one machine's cores all serve.

bin/serve runs `python -m gateway_site.server`; with more than one worker that process becomes a small master
(the pattern of gunicorn and of uvicorn's own --workers):

  - it binds the listening socket once and starts the workers, each the same server as with one worker (daphne's
    GracefulServer or GracefulUvicorn) serving that inherited socket (daphne `--fd`, uvicorn `sockets=`); the
    kernel hands each new connection to one of the workers waiting in accept;
  - a worker that dies (a crash, the OOM killer, SIGKILL) is replaced; the new one replays the dead one's ledger
    spool as every process does at start (usage/ledger.py), so no row is lost. A worker that keeps dying within
    seconds of its start is restarted with a growing pause, not in a tight loop;
  - on SIGTERM or SIGINT it closes its own copy of the socket, sends SIGTERM to every worker and waits while they
    drain as one server does (gateway_site/server.py: stop listening, finish what is in flight for
    GATEWAY_SHUTDOWN_GRACE_SECONDS, end the rest with an error, drain the ledger); a worker still running after
    that (plus a margin) is killed. When the master itself is killed, the kernel sends each worker SIGTERM
    (PR_SET_PDEATHSIG), so none is left serving unsupervised.

What the workers share: everything in PostgreSQL and Redis (limits, budgets, breakers, key revocation, the
response cache, the live feed, sessions). Prometheus metrics are summed over the workers through
PROMETHEUS_MULTIPROC_DIR; the master makes one under GATEWAY_DATA_DIR when it is not set. Each worker has its own
ledger spool, upstream connection pool and in-process caches (keys, routes), as separate servers behind a load
balancer would.

`auto` (the default) is one worker per usable core when the state is shared (REDIS_URL set and a database other
than SQLite), else 1: on the embedded default each process would keep its own rate limits, breakers and response
cache, and SQLite takes one writer at a time, so several workers there would weaken the limits a team set.
"""

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger("gateway_site.workers")

STOP_MARGIN_SECONDS = 10.0  # after a worker's own grace and end time, before the master kills it
QUICK_DEATH_SECONDS = 10.0  # a worker that dies sooner than this after its start is restarted after a pause
MAX_PAUSE_SECONDS = 30.0


def count(setting: str, redis_url: str, database_engine: str) -> int:
    """The number of workers GATEWAY_WORKERS asks for (`auto` or a whole number from 1)."""
    if setting.strip().lower() in ("", "auto"):
        shared = bool(redis_url) and "sqlite" not in database_engine
        return len(os.sched_getaffinity(0)) if shared else 1
    try:
        workers = int(setting)
    except ValueError:
        workers = 0
    if workers < 1:
        sys.exit(f"GATEWAY_WORKERS must be 'auto' or a whole number from 1, not {setting!r}")
    return workers


def bind(host: str, port: int) -> socket.socket:
    """The one listening socket every worker accepts on (inherited by them: not closed at exec)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048)
    sock.set_inheritable(True)
    return sock


class Master:
    """Start `workers` copies of `command(fd)` on the socket, replace the ones that die, drain all on SIGTERM."""

    def __init__(self, sock: socket.socket, workers: int, command, stop_seconds: float):
        self.sock, self.workers, self.command, self.stop_seconds = sock, workers, command, stop_seconds
        self.running: dict[int, tuple[subprocess.Popen, float]] = {}  # slot -> (process, started at)
        self.deaths: dict[int, int] = {}  # slot -> quick deaths in a row
        self.stopping = False

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._signalled)
        for slot in range(self.workers):
            self._start(slot)
        log.info("serving with %d workers (pids %s)", self.workers, " ".join(str(p.pid) for p, _ in self.running.values()))  # fmt: skip
        while not self.stopping:
            self._replace_the_dead()
            time.sleep(0.2)
        return self._drain()

    def _start(self, slot: int) -> None:
        env = {**os.environ, "GATEWAY_WORKERS": "1", "GATEWAY_WORKER_SLOT": str(slot)}
        process = subprocess.Popen(self.command(self.sock.fileno()), env=env, pass_fds=(self.sock.fileno(),),
                                   preexec_fn=_die_with_parent)  # fmt: skip
        self.running[slot] = (process, time.monotonic())

    def _replace_the_dead(self) -> None:
        for slot, (process, started) in list(self.running.items()):
            code = process.poll()
            if code is None or self.stopping:
                continue
            quick = time.monotonic() - started < QUICK_DEATH_SECONDS
            self.deaths[slot] = self.deaths.get(slot, 0) + 1 if quick else 0
            pause = min(2.0 ** self.deaths[slot] - 1, MAX_PAUSE_SECONDS)
            log.warning("worker %d (pid %d) exited with %s; starting a new one%s", slot, process.pid, code,
                        f" in {pause:.0f} s" if pause else "")  # fmt: skip
            self._sleep_unless_stopping(pause)
            if not self.stopping:
                self._start(slot)

    def _sleep_unless_stopping(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(0.1)

    def _signalled(self, signum, frame) -> None:
        if self.stopping:  # a second signal: the workers skip their wait too (as one server does)
            self._signal_all(signal.SIGTERM)
            return
        self.stopping = True
        self.sock.close()  # the workers' copies stay open until each stops listening; then the port is closed
        log.info("%s: draining %d workers", signal.Signals(signum).name, len(self.running))
        self._signal_all(signal.SIGTERM)

    def _signal_all(self, signum: int) -> None:
        for process, _ in self.running.values():
            if process.poll() is None:
                process.send_signal(signum)

    def _drain(self) -> int:
        deadline = time.monotonic() + self.stop_seconds
        for process, _ in self.running.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.warning("worker pid %d still running after %.0f s: killed", process.pid, self.stop_seconds)
                process.kill()
                process.wait()
        return 0


def _die_with_parent() -> None:
    """In the worker, before exec: SIGTERM when the master dies (Linux; elsewhere the worker outlives it)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def metrics_dir(data_dir: Path) -> Path | None:
    """Metrics summed over the workers: PROMETHEUS_MULTIPROC_DIR for them, unless set. Returns the directory made
    for this master (removed when it stops), or None."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    directory = data_dir / f"metrics-{os.getpid()}"
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return directory
