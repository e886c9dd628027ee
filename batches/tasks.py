"""Celery tasks: ids in, a service or the runner called, nothing else. Acks are late (settings), so a task whose
worker dies is delivered again; every task is idempotent on the batch id and the items' custom ids (claims in
batches/services.py), so a second delivery never runs or records an item twice.

    start(batch_id)               submit it as a native upstream batch, or fan its items out to run_chunk tasks
    run_chunk(batch_id, item_ids, project_id)
                                  run them in one of the project's slots (batches/slots.py); come back after a
                                  limit's retry-after for the refused ones
    tick()                        beat, every GATEWAY_BATCH_TICK_SECONDS: expire batches past their window, poll
                                  native upstream batches
"""

import logging

from celery import shared_task

from . import native, runner, services, slots

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def start(batch_id: str) -> None:
    try:
        if native.submit(batch_id):  # one batch upstream, polled by tick()
            return
    except Exception:  # the upstream's batch API failed: the items still run, one by one
        log.exception("batch %s: native submission failed; running it item by item", batch_id)
    project_id = services.project_of(batch_id)
    for item_ids in services.chunks_to_run(batch_id):
        run_chunk.delay(batch_id, item_ids, project_id)
    services.finish_if_done(batch_id)  # a batch whose items all ended (or were canceled) before it started


@shared_task(bind=True, ignore_result=True, max_retries=None)
def run_chunk(self, batch_id: str, item_ids: list[int], project_id: int | None = None) -> None:
    slot = slots.acquire(project_id) if project_id is not None else None
    if project_id is not None and slot is None:  # the project's other chunks hold every slot: come back shortly
        raise self.retry(countdown=1)
    try:
        wait = runner.run_chunk(batch_id, item_ids)
    except Exception as exc:  # the database or Redis away for a moment: the chunk comes back, it is not dropped
        log.exception("batch %s: chunk failed; retrying it", batch_id)
        raise self.retry(countdown=5, exc=exc) from None
    finally:
        if slot:
            slots.release(slot)
    if wait > 0:
        raise self.retry(countdown=wait)
    services.finish_if_done(batch_id)


@shared_task(ignore_result=True)
def tick() -> None:
    services.expire_due()
    native.poll_all()
