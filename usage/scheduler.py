"""The embedded default's nightly job: with no Celery broker (REDIS_URL unset) nothing runs beat, so the web
process runs services.nightly and request log retention (usage/request_logs.py) itself, from one daemon
thread: GATEWAY_ROLLUP_FIRST_DELAY_SECONDS (60) after start-up, to catch up on days missed while it was down,
and then every day at 00:10 UTC. The bill reconciliation (usage/reconcile.py) follows in the same thread when any
bill source is configured.

GATEWAY_ROLLUP_IN_PROCESS: `auto` (the default) starts the thread only without a broker; `on` always; `off`
never (run `manage.py rollup_usage` from cron instead). With several web processes and no broker each one
would run it: harmless, since a rollup replaces its day under a row lock, but wasteful; set `off` there.
Started by gateway_site/asgi.py, so management commands and Celery workers never start it.
"""

import logging
import threading
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

log = logging.getLogger(__name__)
RUN_AT = (0, 10)  # hour, minute (UTC)
_thread: threading.Thread | None = None
_lock = threading.Lock()


def wanted() -> bool:
    mode = settings.GATEWAY_ROLLUP_IN_PROCESS.lower()
    return mode == "on" or (mode == "auto" and not settings.REDIS_URL)


def start() -> bool:
    """Start the timer thread once per process if the settings want it. Returns whether it runs."""
    global _thread
    if not wanted():
        return False
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_loop, name="usage-nightly", daemon=True)
            _thread.start()
    return True


def seconds_until_next_run(now: datetime) -> float:
    run = now.replace(hour=RUN_AT[0], minute=RUN_AT[1], second=0, microsecond=0)
    if run <= now:
        run += timedelta(days=1)
    return (run - now).total_seconds()


def _loop() -> None:
    wait = settings.GATEWAY_ROLLUP_FIRST_DELAY_SECONDS
    stop = threading.Event()  # never set: the thread is a daemon and ends with the process
    while True:
        stop.wait(wait)
        run_once()
        wait = seconds_until_next_run(timezone.now())


def run_once() -> None:
    from . import request_logs, services

    try:
        close_old_connections()
        done = services.nightly()
        log.info("usage nightly (in-process): rolled up %s, deleted %d raw rows", ", ".join(done["rolled"]) or
                 "nothing", done["deleted"])  # fmt: skip
    except Exception:
        log.exception("usage nightly rollup failed; it runs again tomorrow (or: manage.py rollup_usage)")
    try:
        request_logs.expire()  # apart from the rollup: one failing never holds back the other
    except Exception:
        log.exception("request log retention failed; it runs again tomorrow")
    try:
        from . import reconcile
        from .models import BillSource

        if BillSource.objects.filter(enabled=True).exists():
            log.info("bill reconciliation (in-process): %s", reconcile.summary(reconcile.reconcile_all())["text"])
    except Exception:
        log.exception("bill reconciliation failed; it runs again tomorrow (or: manage.py reconcile_bills)")
    finally:
        connection.close()
