"""Shared fixtures. Integration tests run the real gateway (daphne, a real port, real HTTP) as a subprocess on
pytest-django's test database, so whatever a test commits is what the server sees."""

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url(settings_dict: dict) -> str:
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{auth}{settings_dict.get('HOST') or '127.0.0.1'}{port}/{settings_dict['NAME']}"


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_gateway(
    extra_env: dict | None = None, tmp_dir: Path | None = None, server: str = "daphne", command: list[str] | None = None,
    port: int | None = None,
) -> RunningServer:
    """The gateway as bin/serve runs it (daphne, or uvicorn), on the test database (on `port`, else a free one);
    `command` starts it another way (its "{port}" is filled in), e.g. the plain daphne command of README
    "Operations"."""
    from django.db import connection

    port = port or free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "GATEWAY_CACHE_TTL": "0.5",
        "GATEWAY_LEDGER_FLUSH_SECONDS": "0.05",
        "GATEWAY_MAX_BODY_BYTES": str(2 * 1024 * 1024),
        "GATEWAY_STREAM_PING_SECONDS": "0.2",
        # The shared test world's tests fail upstream calls on purpose; breakers would let one test's failures
        # cool an account down for the next test. Tests of breakers start a server of their own with them on.
        "GATEWAY_BREAKER_THRESHOLD": "0",
        # Every test client is 127.0.0.1 and many tests send bad keys on purpose: no per-address auth throttling
        # here (tests/test_hardening_api.py starts servers of its own with it on).
        "GATEWAY_AUTH_FAILURE_LIMIT": "0",
        "GATEWAY_RETRY_BASE_MS": "20",
        # No nightly rollup thread (usage/scheduler.py) rolling the shared test database up at an odd moment;
        # tests roll up the days they write, and tests/e2e/test_rollup_celery.py runs the job on Celery.
        "GATEWAY_ROLLUP_IN_PROCESS": "off",
        # One server process unless a test asks for more (tests/e2e/test_workers.py): `auto` would start one per
        # core on the PostgreSQL + Redis run, and tests that signal or kill "the server" mean one process.
        "GATEWAY_WORKERS": "1",
        "PYTHONUNBUFFERED": "1",
        "GATEWAY_SERVER": server,
        "VENV_PYTHON": sys.executable,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        **(extra_env or {}),
    }
    log_dir = tmp_dir or Path(os.environ.get("GATEWAY_DATA_DIR") or ROOT / "data")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"gateway-{port}.log"
    process = subprocess.Popen(
        [part.replace("{port}", str(port)) for part in command] if command else [str(ROOT / "bin" / "serve")],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited early:\n{log_path.read_text()}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return RunningServer(url, process, log_path)
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"gateway did not start:\n{log_path.read_text()}")


def stop_gateway(server: RunningServer) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker):
    """Always create the test database: the end-to-end tests use it through the server without any test being
    marked django_db (which is how pytest-django would otherwise decide to create it)."""
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    _forget_policy_state()
    yield
    from usage import ledger

    ledger.stop()  # in-process tests may have queued records
    with django_db_blocker.unblock():
        _close_other_connections()
        teardown_databases(config, verbosity=0)


def _forget_policy_state() -> None:
    """The test database is new each session but Redis is not: budget counters and breakers kept there under a
    previous session's project and account ids would apply to this session's rows with the same ids."""
    from django.conf import settings

    if not settings.REDIS_URL:
        return
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    stale = list(client.scan_iter(match="gh:*", count=1000))
    if stale:
        client.delete(*stale)
    client.close()


def _close_other_connections() -> None:
    """Worker threads of in-process async tests keep their own connections; PostgreSQL cannot drop a database
    that still has any."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )


@pytest.fixture(scope="session")
def gateway_server(django_db_setup, django_db_blocker, tmp_path_factory):
    """The gateway as users run it (daphne), on the test database. Data tests create must be committed
    (use `committed` below, not the `db` fixture, whose transaction the server cannot see)."""
    server = start_gateway(tmp_dir=tmp_path_factory.mktemp("gateway"))
    yield server
    stop_gateway(server)


@pytest.fixture
def committed(django_db_blocker):
    """ORM access outside a test transaction, so the gateway subprocess sees the rows."""
    with django_db_blocker.unblock():
        yield
