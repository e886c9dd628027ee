"""Celery tasks: ids in, a service or the runner called, nothing else. Acks are late (settings), so a task whose
worker dies is delivered again; every task is idempotent on the batch id and the items' custom ids (claims in
batches/services.py), so a second delivery never runs or records an item twice.

    start(batch_id)               submit it as a native upstream batch, or fan its items out to run_chunk tasks
    run_chunk(batch_id, item_ids) run them; come back after a limit's retry-after for the refused ones
    tick()                        beat, every GATEWAY_BATCH_TICK_SECONDS: expire batches past their window, poll
                                  native upstream batches
"""

from celery import shared_task

from . import native, runner, services


@shared_task(ignore_result=True)
def start(batch_id: str) -> None:
    if native.submit(batch_id):  # one batch upstream, polled by tick()
        return
    for item_ids in services.chunks_to_run(batch_id):
        run_chunk.delay(batch_id, item_ids)
    services.finish_if_done(batch_id)  # a batch whose items all ended (or were canceled) before it started


@shared_task(bind=True, ignore_result=True, max_retries=None)
def run_chunk(self, batch_id: str, item_ids: list[int]) -> None:
    wait = runner.run_chunk(batch_id, item_ids)
    if wait > 0:
        raise self.retry(countdown=wait)
    services.finish_if_done(batch_id)


@shared_task(ignore_result=True)
def tick() -> None:
    services.expire_due()
    native.poll_all()
