"""The nightly rollup on real Celery: a worker with beat embedded (tests/celery_world.py) on a real Redis broker
runs usage.tasks.nightly from the beat schedule (every second here: GATEWAY_ROLLUP_BEAT_SECONDS), which rolls
the ledger's recent days up on the test database; a row that arrives late is counted at the next run. And the
embedded default, with no broker: the web process itself rolls up (usage/scheduler.py)."""

import os
import secrets
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Project
from tests.celery_world import celery_env, start_worker, stop_worker
from tests.conftest import start_gateway, stop_gateway
from usage.models import DailyRollup, RolledDay, UsageRecord

# The broker's Redis database: flushed when the test starts, so give it one nobody else uses at the same time.
REDIS_URL = os.environ.get("ROLLUP_CELERY_REDIS_URL", "redis://127.0.0.1:6379/12")


def _wait(predicate, timeout: float, what: str, worker):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"{what} within {timeout:g} s; worker log:\n{worker.log()[-4000:]}")


def _add_row(project, when, cost):
    return UsageRecord.objects.create(created_at=when, request_id=f"req_celery_{secrets.token_hex(8)}", project=project,
                                      alias="celery", remote_model="celery-model", provider="celery-provider",
                                      ingress_api="openai", http_status=200, outcome="ok", cost_usd=Decimal(cost),
                                      input_tokens=100, output_tokens=10)  # fmt: skip


def test_beat_runs_the_rollup_task_on_a_real_worker(django_db_setup, committed, tmp_path):
    project = Project.objects.create(slug=f"celery-{secrets.token_hex(3)}", name="Celery rollup")
    yesterday = timezone.localdate() - timedelta(days=1)
    noon = datetime.combine(yesterday, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)
    _add_row(project, noon, "0.25000000")
    _add_row(project, noon + timedelta(minutes=1), "0.50000001")
    started = timezone.now()
    env = celery_env(REDIS_URL, GATEWAY_ROLLUP_BEAT_SECONDS="1", GATEWAY_ROLLUP_REROLL_DAYS="2",
                     GATEWAY_LEDGER_RETENTION_DAYS="0", GATEWAY_ROLLUP_IN_PROCESS="off")  # fmt: skip
    worker = start_worker(env, tmp_dir=tmp_path, beat=True)
    try:
        def rolled(requests):
            row = DailyRollup.objects.filter(day=yesterday, project=project).first()
            return row if row is not None and row.requests == requests else None

        first = _wait(lambda: rolled(2), 60, "beat did not run usage.tasks.nightly", worker)
        assert first.cost_usd == Decimal("0.75000001") and first.input_tokens == 200
        assert RolledDay.objects.get(day=yesterday).rolled_at >= started
        assert "usage.tasks.nightly" in worker.log()
        assert f"usage nightly: rolled up {yesterday - timedelta(days=1)}, {yesterday}" in worker.log()

        _add_row(project, noon + timedelta(hours=11), "0.00000002")  # late: after the first rollup
        late = _wait(lambda: rolled(3), 30, "the next beat run did not count the late row", worker)
        assert late.cost_usd == Decimal("0.75000003")
        assert DailyRollup.objects.filter(day=yesterday, project=project).count() == 1  # replaced, not added
    finally:
        stop_worker(worker)
        UsageRecord.objects.filter(project=project).delete()
        DailyRollup.objects.filter(project=project).delete()
        project.delete()


def test_the_web_process_rolls_up_when_there_is_no_broker(django_db_setup, committed, tmp_path):
    project = Project.objects.create(slug=f"embedded-{secrets.token_hex(3)}", name="Embedded rollup")
    yesterday = timezone.localdate() - timedelta(days=1)
    _add_row(project, datetime.combine(yesterday, datetime.min.time(), tzinfo=UTC) + timedelta(hours=3), "0.10000000")
    server = start_gateway(extra_env={"REDIS_URL": "", "GATEWAY_ROLLUP_IN_PROCESS": "auto",
                                      "GATEWAY_ROLLUP_FIRST_DELAY_SECONDS": "0.5"}, tmp_dir=tmp_path)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not DailyRollup.objects.filter(day=yesterday, project=project).exists():
            assert time.monotonic() < deadline, f"the server did not roll up; its log:\n{server.log()[-3000:]}"
            time.sleep(0.25)
        assert DailyRollup.objects.get(day=yesterday, project=project).cost_usd == Decimal("0.10000000")
        assert "usage nightly (in-process): rolled up" in server.log()
    finally:
        stop_gateway(server)
        UsageRecord.objects.filter(project=project).delete()
        DailyRollup.objects.filter(project=project).delete()
        project.delete()


@pytest.mark.parametrize("mode,redis_url,expected", [("auto", "", True), ("auto", "redis://x", False),
                                                     ("off", "", False), ("on", "redis://x", True)])  # fmt: skip
def test_in_process_timer_runs_only_without_a_broker(settings, mode, redis_url, expected):
    from usage import scheduler

    settings.GATEWAY_ROLLUP_IN_PROCESS, settings.REDIS_URL = mode, redis_url
    assert scheduler.wanted() is expected
    now = datetime(2026, 3, 1, 0, 9, 30, tzinfo=UTC)
    assert scheduler.seconds_until_next_run(now) == 30
    assert scheduler.seconds_until_next_run(now + timedelta(minutes=2)) == 24 * 3600 - 90
