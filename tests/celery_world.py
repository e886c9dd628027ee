"""A real Celery worker (and beat, if asked) for tests: a subprocess on pytest's test database and a Redis broker,
as `celery -A gateway_site worker` runs in production. Only the model is fake; the broker, the worker and its
acks are real.

    from tests.celery_world import start_worker, stop_worker, kill_worker, celery_env

    env = celery_env()                                   # REDIS_URL / CELERY_BROKER_URL for a dedicated Redis db
    server = start_gateway(extra_env=env, tmp_dir=...)   # the web process must enqueue on the same broker
    worker = start_worker(env, tmp_dir=..., beat=True)   # returns once the worker answers `inspect ping`
    ...
    kill_worker(worker)                                  # SIGKILL: the crash test
    stop_worker(worker)                                  # SIGTERM, then SIGKILL after a grace period

Without REDIS_URL the settings make Celery eager (tasks run in the calling process); these helpers always pass
the broker explicitly, so a test gets a real worker in the SQLite run of the suite too. Redis databases: the
default here is db 13, flushed by `celery_env(flush=True)` so no task or policy counter of an earlier session is
left; pass `redis_url=` to use another (each helper or test module that runs workers at the same time as another
one needs its own).
"""

import atexit
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import ROOT, database_url

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
_started: list = []  # every worker this process started: none outlives the test session (see _kill_leftovers)


@dataclass
class RunningWorker:
    name: str  # the node name, celery@<name>
    process: subprocess.Popen
    log_path: Path
    env: dict = field(repr=False, default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def pid(self) -> int:
        return self.process.pid


def celery_env(redis_url: str | None = None, *, flush: bool = True, **extra: str) -> dict[str, str]:
    """The environment a gateway server and its workers share: one Redis as cache, policy state and broker."""
    url = redis_url or os.environ.get("CELERY_TEST_REDIS_URL") or DEFAULT_REDIS_URL
    if flush:
        import redis

        client = redis.Redis.from_url(url)
        client.flushdb()
        client.close()
    return {"REDIS_URL": url, "CELERY_BROKER_URL": url, **extra}


def start_worker(
    env: dict | None = None,
    *,
    tmp_dir: Path | None = None,
    beat: bool = False,
    queues: str | None = None,
    concurrency: int = 1,
    pool: str = "prefork",
    extra_args: list[str] | None = None,
    timeout: float = 60.0,
) -> RunningWorker:
    """A worker on the test database; `beat=True` embeds beat in it (`worker -B`, one process is enough for
    tests). Returns once the worker answers a ping through the broker."""
    from django.db import connection

    env = env or celery_env()
    name = f"test-{uuid.uuid4().hex[:8]}"
    log_dir = tmp_dir or Path(os.environ.get("GATEWAY_DATA_DIR") or ROOT / "data")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"worker-{name}.log"
    full_env = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "GATEWAY_CACHE_TTL": "0.5",
        "GATEWAY_LEDGER_FLUSH_SECONDS": "0.05",
        "GATEWAY_BREAKER_THRESHOLD": "0",
        "GATEWAY_RETRY_BASE_MS": "20",
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    args = [sys.executable, "-m", "celery", "-A", "gateway_site", "worker", "--loglevel=INFO",
            f"--hostname={name}@%h", f"--concurrency={concurrency}", f"--pool={pool}", "--without-gossip",
            "--without-mingle"]
    if queues:
        args.append(f"--queues={queues}")
    if beat:
        args += ["-B", f"--schedule={log_dir / f'beat-{name}'}"]
    args += extra_args or []
    process = subprocess.Popen(args, cwd=ROOT, env=full_env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    worker = RunningWorker(name, process, log_path, full_env)
    _started.append(worker)
    _wait_ready(worker, timeout)
    return worker


def _wait_ready(worker: RunningWorker, timeout: float) -> None:
    """`celery inspect ping` through the broker: the worker consumes, not just runs."""
    from celery import Celery

    probe = Celery(broker=worker.env["CELERY_BROKER_URL"])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if worker.process.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{worker.log()}")
            try:
                replies = probe.control.ping(destination=[f"{worker.name}@{os.uname().nodename}"], timeout=0.5)
            except Exception:  # the broker connection is being set up
                replies = []
            if replies:
                return
            time.sleep(0.2)
    finally:
        probe.close()
    kill_worker(worker)
    raise RuntimeError(f"celery worker did not become ready:\n{worker.log()}")


def stop_worker(worker: RunningWorker, grace: float = 20.0) -> None:
    """A warm shutdown (SIGTERM: running tasks finish), then SIGKILL after `grace` seconds."""
    if worker.process.poll() is None:
        _signal_group(worker, signal.SIGTERM)
        try:
            worker.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            kill_worker(worker)


def kill_worker(worker: RunningWorker) -> None:
    """SIGKILL the worker and its pool children at once, as a crash or the OOM killer would: nothing is acked,
    nothing is flushed."""
    if worker.process.poll() is None or _group_alive(worker):
        _signal_group(worker, signal.SIGKILL)
    try:
        worker.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _signal_group(worker: RunningWorker, sig: int) -> None:
    try:
        os.killpg(worker.process.pid, sig)  # start_new_session: the group is this worker's alone
    except ProcessLookupError:
        pass


def _group_alive(worker: RunningWorker) -> bool:
    try:
        os.killpg(worker.process.pid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


@atexit.register
def _kill_leftovers() -> None:
    """A worker whose test forgot to stop it (or whose fixture failed half-way) would keep consuming from the
    test broker after the session, against a dropped database."""
    for worker in _started:
        kill_worker(worker)
