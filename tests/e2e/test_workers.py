"""GATEWAY_WORKERS (gateway_site/workers.py): several server processes on one port, as bin/serve starts them.

Each test starts bin/serve with GATEWAY_WORKERS=2 and reads the workers from /proc (the master's children): that
both serve, that a SIGKILLed one is replaced and its spooled rows reach the ledger exactly once, that SIGTERM
drains both, and that a key's limit holds across both through Redis.
"""

import concurrent.futures
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
import redis
from django.test import override_settings

from gateway_site import workers
from tests.conftest import start_gateway, stop_gateway
from tests.e2e import policy_world as pw

SHARED_REDIS = "redis://127.0.0.1:6379/12"
TICKS = 100  # os.sysconf("SC_CLK_TCK") on Linux: /proc's CPU times are in these


def children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sorted(int(p) for p in found)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def wait_for_workers(server, count: int, timeout: float = 30, other_than=()) -> list[int]:
    """The master's children once `count` are there and each answers (a new one has replayed its spools)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = children(server.process.pid)
        if len(pids) == count and not set(pids) & set(other_than):
            time.sleep(2)  # a new worker: listening and past its ledger replay
            return pids
        time.sleep(0.1)
    raise AssertionError(f"workers: {children(server.process.pid)}\n{server.log()[-3000:]}")


def fan_out(url: str, secret: str, alias: str, count: int, text: str = "SAY: ok", threads: int = 8) -> list[int]:
    """`count` chat requests from `threads` threads, each on a connection of its own (no keep-alive), so the
    kernel hands them to whichever worker is waiting in accept."""

    def one(_):
        with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)) as client:
            return client.post(f"{url}/v1/chat/completions", headers={"authorization": f"Bearer {secret}"},
                               json={"model": alias, "messages": [{"role": "user", "content": text}]},
                               timeout=30).status_code  # fmt: skip

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(count)))


def ledger_rows(project) -> int:
    from usage.models import UsageRecord

    return UsageRecord.objects.filter(project_id=project.id).count()


def configured(world, server, **key_fields):
    """A route to the fake and a key of a new project, once the server knows them."""
    alias = pw.route((pw.provider(world.fake), "fake-gpt", 0))
    project = pw.project()
    secret = pw.key(project, **key_fields)
    pw.wait_for_config(server.url, secret, alias)
    return alias, project, secret


@pytest.fixture
def two_workers(world, tmp_path, committed):
    started = []

    def start(**env):
        server = start_gateway({"GATEWAY_WORKERS": "2", **env}, tmp_dir=tmp_path / f"w{len(started)}")
        started.append(server)
        return server

    yield start
    for server in started:
        stop_gateway(server)


@pytest.mark.parametrize("server_kind", ["daphne", "uvicorn"])
def test_two_workers_serve_one_port(world, two_workers, server_kind):
    server = two_workers(GATEWAY_SERVER=server_kind)
    pids = wait_for_workers(server, 2)
    alias, project, secret = configured(world, server)
    before = [cpu_seconds(pid) for pid in pids]
    assert fan_out(server.url, secret, alias, 240) == [200] * 240
    used = [cpu_seconds(pid) - b for pid, b in zip(pids, before)]
    assert all(seconds >= 0.05 for seconds in used), f"CPU seconds per worker while serving: {used}"
    # /metrics from either worker sums both (PROMETHEUS_MULTIPROC_DIR made by the master)
    metrics = httpx.get(f"{server.url}/metrics").text
    assert "gateway_requests_total" in metrics
    total = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                if line.startswith("gateway_requests_total{") and f'project="{project.slug}"' in line)  # fmt: skip
    assert total == 240, metrics[:2000]


def test_a_killed_worker_is_replaced_and_its_rows_reach_the_ledger_once(world, two_workers):
    # Rows wait in the spool for a minute before the writer commits them: a SIGKILL now leaves them there
    server = two_workers(GATEWAY_LEDGER_FLUSH_SECONDS="60")
    first = wait_for_workers(server, 2)
    alias, project, secret = configured(world, server)
    before = [cpu_seconds(pid) for pid in first]
    assert fan_out(server.url, secret, alias, 120) == [200] * 120
    busier = max(zip((cpu_seconds(p) - b for p, b in zip(first, before)), first))[1]
    assert ledger_rows(project) < 120  # some rows are only in the spools yet
    os.kill(busier, signal.SIGKILL)
    replaced = wait_for_workers(server, 2, other_than=[busier])
    assert busier not in replaced and len(set(replaced) & set(first)) == 1
    assert "exited with -9; starting a new one" in server.log()
    assert fan_out(server.url, secret, alias, 20) == [200] * 20  # both serve again
    stop_gateway(server)  # the survivor drains its own spool as it stops
    assert server.process.returncode == 0
    assert ledger_rows(project) == 140  # every request once: the dead worker's rows replayed, none twice


def test_sigterm_drains_both_workers(world, two_workers):
    server = two_workers()
    wait_for_workers(server, 2)
    alias, project, secret = configured(world, server)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        marker = f"late-{project.slug}"
        slow = pool.submit(fan_out, server.url, secret, alias, 8, f"SAY: {marker} SLOW: 3000", 8)
        deadline = time.monotonic() + 20
        while sum(marker in str(r.get("body")) for r in world.fake.requests) < 8 and time.monotonic() < deadline:
            time.sleep(0.05)  # until all eight are waiting for the upstream, spread over the workers
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert slow.result(timeout=30) == [200] * 8  # every request in flight finished normally
    server.process.wait(timeout=30)
    assert server.process.returncode == 0 and time.monotonic() - started < 15
    with pytest.raises(httpx.ConnectError):  # the port is closed: a load balancer moves on
        httpx.get(f"{server.url}/health", timeout=2)
    assert ledger_rows(project) == 8


def test_a_keys_rpm_holds_across_two_workers(world, two_workers):
    redis.Redis.from_url(SHARED_REDIS).flushdb()
    server = two_workers(REDIS_URL=SHARED_REDIS, GATEWAY_CACHE_TTL="60")
    pids = wait_for_workers(server, 2)
    with override_settings(REDIS_URL=SHARED_REDIS):
        alias, _, secret = configured(world, server, rpm_limit=10)
    before = [cpu_seconds(pid) for pid in pids]
    statuses = fan_out(server.url, secret, alias, 40)
    assert sorted(statuses) == [200] * 10 + [429] * 30
    assert all(cpu_seconds(p) - b > 0.02 for p, b in zip(pids, before))  # both workers answered some


@pytest.mark.parametrize(
    ("setting", "redis_url", "engine", "expected"),
    [("auto", "", "django.db.backends.sqlite3", 1),  # the embedded default: state per process, one writer
     ("auto", "redis://x", "django.db.backends.sqlite3", 1),
     ("auto", "", "django.db.backends.postgresql", 1),
     ("auto", "redis://x", "django.db.backends.postgresql", "cores"),
     ("3", "", "django.db.backends.sqlite3", 3)],
)  # fmt: skip
def test_how_many_workers(setting, redis_url, engine, expected):
    want = len(os.sched_getaffinity(0)) if expected == "cores" else expected
    assert workers.count(setting, redis_url, engine) == want


@pytest.mark.parametrize("bad", ["0", "-1", "two"])
def test_a_bad_worker_count_stops_the_start(bad):
    with pytest.raises(SystemExit) as stopped:
        workers.count(bad, "", "sqlite")
    assert "GATEWAY_WORKERS" in str(stopped.value)
