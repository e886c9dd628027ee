"""The ledger guarantee under the Celery worker, started as README "Operations" and docker-compose.yml start it
(`celery -A gateway_site worker`, prefork pool): the worker writes a ledger row per batch item, so a worker killed
mid-item must have its spool replayed when a worker starts again (not only when a batch happens to need it), and
a worker stopped by SIGTERM (a warm shutdown: the running item finishes) must write the row before it exits.

A real gateway (daphne) takes the batch and enqueues it on Redis (db 14, this module's own); a real worker runs it
against the scripted fake upstream. The worker has a data dir (its spool) of its own, which no other process
replays, and a 60 s flush interval: a row is in the database only if the worker's own writer wrote it at the
moments under test (a start's replay, a shutdown's drain), never by its routine flush."""

import signal
import time
from dataclasses import dataclass

import anthropic
import pytest

from tests.celery_world import celery_env, kill_worker, start_worker, stop_worker
from tests.conftest import stop_gateway

from .test_ledger_durability import gateway, rows_for, session_secrets, spooled

REDIS_URL = "redis://127.0.0.1:6379/14"  # this module's own (others: 11, 12, 13, 15)


@dataclass
class WorkerWorld:
    url: str
    key: str
    env: dict  # the broker, shared by the gateway and the workers

    def worker(self, data_dir, tmp_dir):
        env = {**self.env, **session_secrets(), "GATEWAY_DATA_DIR": str(data_dir), "GATEWAY_LEDGER_FLUSH_SECONDS": "60"}
        return start_worker(env, tmp_dir=tmp_dir)

    def batch(self, text: str) -> str:
        client = anthropic.Anthropic(base_url=self.url, api_key=self.key, max_retries=0)
        params = {"model": "gw-anthropic", "max_tokens": 50, "messages": [{"role": "user", "content": text}]}
        return client.messages.batches.create(requests=[{"custom_id": "only", "params": params}]).id


@pytest.fixture(scope="module")
def lw(world, tmp_path_factory):
    # A visibility timeout of an hour (production's): a killed worker's task does not come back during the module,
    # so nothing but the start of a worker can replay its spool.
    # Item by item (not one native batch upstream): the items' calls are the worker's own.
    env = celery_env(REDIS_URL, GATEWAY_CELERY_VISIBILITY_TIMEOUT="3600", GATEWAY_BATCH_NATIVE="false")
    server = gateway(tmp_path_factory.mktemp("ledger-worker"), "web", **env)
    try:
        yield WorkerWorld(server.url, world.keys["alpha"], env)
    finally:
        stop_gateway(server)


def running_item(batch_id: str, data_dir, timeout: float = 30.0):
    """The batch's item once a worker has claimed it and spooled its call's snapshot (the upstream was called)."""
    from batches.models import BatchItem

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = BatchItem.objects.filter(batch_id=batch_id, status="running").first()
        if item and item.request_id and spooled(data_dir, item.request_id):
            return item
        time.sleep(0.1)
    raise AssertionError(f"batch {batch_id}'s item never reached the upstream")


def test_a_worker_killed_mid_item_has_its_spool_replayed_when_a_worker_starts(lw, committed, tmp_path):
    data = tmp_path / "worker-data"
    worker = lw.worker(data, tmp_path)
    try:
        batch_id = lw.batch("SLOW: 15000\nSAY: never answered")
        item = running_item(batch_id, data)
        kill_worker(worker)  # SIGKILL to the worker and its pool children
    finally:
        stop_worker(worker)
    assert rows_for([item.request_id], timeout=1) == []  # the killed worker wrote nothing for it

    again = lw.worker(data, tmp_path)  # no batch for it to run: only its start can replay the dead spool
    try:
        (row,) = rows_for([item.request_id], timeout=15)
    finally:
        stop_worker(again)
    assert (row.outcome, row.batch_id, row.error_type) == ("interrupted", batch_id, "api_error")
    assert row.project.slug == "alpha" and row.alias == "gw-anthropic"


def test_a_worker_stopped_by_sigterm_mid_item_writes_its_row_before_it_exits(lw, committed, tmp_path):
    from batches.models import BatchItem

    data = tmp_path / "worker-data"
    worker = lw.worker(data, tmp_path)
    try:
        batch_id = lw.batch("SLOW: 2000\nSAY: finished after the signal\nUSAGE: in=40 out=5")
        item = running_item(batch_id, data)
        worker.process.send_signal(signal.SIGTERM)  # the main process, as `docker stop` and `kill PID` do
        worker.process.wait(timeout=60)
    finally:
        stop_worker(worker)
    assert BatchItem.objects.get(id=item.id).status == "succeeded"  # the warm shutdown let the item finish
    (row,) = rows_for([item.request_id], timeout=1)  # no process is left to write it: the worker did, before exiting
    assert (row.outcome, row.batch_id, row.input_tokens, row.output_tokens) == ("ok", batch_id, 40, 5)
