"""The embedded default (no broker: `bin/run` without REDIS_URL): a batch runs in a background thread of the
server process that created it, chunk by chunk through the same runner the Celery tasks use. For trying things
out: a batch in flight when the process stops stays `in_progress` until its completion window expires it (the
next batch created in this process runs the expiry check)."""

import logging
import threading
import time

from django.db import connections

from . import runner, services

log = logging.getLogger(__name__)


def run_in_background(batch_id: str) -> threading.Thread:
    thread = threading.Thread(target=_run, args=(batch_id,), name=f"batch-{batch_id}", daemon=True)
    thread.start()
    return thread


def _run(batch_id: str) -> None:
    try:
        services.expire_due()
        for item_ids in services.chunks_to_run(batch_id):
            while (wait := runner.run_chunk(batch_id, item_ids)) > 0:
                time.sleep(wait)
        services.finish_if_done(batch_id)
    except Exception:
        log.exception("batch %s failed in the background", batch_id)
    finally:
        runner.close_loop()
        connections.close_all()
