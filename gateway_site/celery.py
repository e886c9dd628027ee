"""Celery app. Without REDIS_URL tasks run eagerly in-process (settings), so nothing needs a broker.

A worker writes ledger rows (one per batch item), so it keeps the ledger guarantee as the web servers do
(usage/ledger.py, README "Durability of the ledger"): each process that runs tasks starts the ledger writer as it
starts, which replays the spools of processes that died (a killed worker's, say), and drains it before it exits.
With the prefork pool (the default) those are the pool's children: `worker_process_init` / `worker_process_shutdown`
(they leave through os._exit, so atexit would never drain them). The main process then records nothing and starts
no writer: a writer there would be inherited, half-alive, by every child it forks. Other pools (solo, threads)
run tasks in the main process: it starts the writer when ready, and drains it at shutdown. Tracing (usage/tracing.py,
batch items are requests too) starts and flushes with the ledger writer, in the same processes, for the same reason.
"""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")

app = Celery("gatehouse")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_process_init.connect
def _start_ledger_in_pool_process(**_):
    from usage import ledger, tracing

    ledger.start()
    tracing.setup()


@signals.worker_ready.connect
def _start_ledger_in_worker(sender=None, **_):
    from celery.concurrency.prefork import TaskPool

    from usage import ledger, tracing

    if not isinstance(getattr(sender, "pool", None), TaskPool):
        ledger.start()
        tracing.setup()


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def _drain_ledger(**_):
    from usage import ledger, tracing

    ledger.stop()
    tracing.shutdown()
