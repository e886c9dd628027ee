"""Celery tasks of the usage package: thin, each takes a date (ISO string) or nothing and calls a service.

    nightly            beat runs it at 00:10 UTC (settings.CELERY_BEAT_SCHEDULE): re-roll the last
                       GATEWAY_ROLLUP_REROLL_DAYS days, then apply GATEWAY_LEDGER_RETENTION_DAYS
    rollup_day(day)    roll one day up again (e.g. after a correction), `day` as YYYY-MM-DD
    reconcile_bills    beat runs it at 04:20 UTC: the providers' own bills against the ledger for the last
                       GATEWAY_RECONCILE_DAYS days (usage/reconcile.py, docs/reconciliation.md)
    request_logs_expire  beat runs it with `nightly`: request logs past their project's retention

Without a broker (REDIS_URL unset) Celery runs tasks eagerly and nothing runs beat: usage/scheduler.py calls
services.nightly from a timer thread in the web process instead.
"""

import logging
from datetime import date

from celery import shared_task

from . import reconcile, request_logs, services

log = logging.getLogger(__name__)


@shared_task(name="usage.tasks.nightly")
def nightly() -> dict:
    done = services.nightly()
    log.info("usage nightly: rolled up %s, deleted %d raw rows", ", ".join(done["rolled"]) or "nothing",
             done["deleted"])  # fmt: skip
    return done


@shared_task(name="usage.tasks.rollup_day")
def rollup_day(day: str) -> int:
    return services.rollup_day(date.fromisoformat(day)).rows


@shared_task(name="usage.tasks.reconcile_bills")
def reconcile_bills(days: int | None = None) -> dict:
    outcomes = reconcile.reconcile_all(days)
    summary = reconcile.summary(outcomes)
    log.info("bill reconciliation: %s", summary["text"])
    return summary


@shared_task(name="usage.tasks.request_logs_expire")
def request_logs_expire() -> int:
    return request_logs.expire()
