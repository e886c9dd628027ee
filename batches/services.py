"""The writes of batches, items and files. The API (batches/api.py), the tasks (batches/tasks.py), the runner
(batches/runner.py) and the admin call these. The one other writer is batches/native.py, which records a batch
sent to a provider's own batch API (Batch.native) and its items' results as it collects them.

A batch's life:
    create_*        validate every item (batches/validate.py), store the batch and its items, dispatch() it
    dispatch        with a broker: the `start` task fans the items out to `run_chunk` tasks; without one (the
                    embedded default), a thread of this process runs them (batches/embedded.py)
    claim_items     a chunk task takes its items (pending, or running under a dead worker's expired lease)
    complete_items  their answers, once each item's ledger row is written (only the claim's holder may)
    release_items   items refused by a rate limit go back to pending, to be retried after retry-after
    cancel          pending items are canceled at once, running ones finish; expire_due does the same at the
                    end of the completion window, marking the rest `expired`
    finish_if_done  once no item is open: the results files are written and the batch ends (once)

How to add a batch API: a `create_<kind>` here (validate, then `_store`), a renderer in batches/wire.py and the
endpoints in batches/api.py; running, cancel, expiry and the admin need nothing new.
"""

import io
import logging
import secrets
from datetime import timedelta

import orjson
from django.conf import settings
from django.core.files.base import ContentFile, File
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from proxy import ids

from . import selectors, validate, wire
from .models import Batch, BatchFile, BatchItem

log = logging.getLogger(__name__)

COMPLETION_WINDOW = timedelta(hours=24)


def lease_seconds() -> float:
    """How long a running item is its worker's: past it, another worker may take the item over. It must exceed
    the longest an item can run (the retry deadline plus the upstream's read timeout)."""
    return settings.GATEWAY_BATCH_ITEM_LEASE_SECONDS


# --- files -----------------------------------------------------------------------------------------------------


def file_create(project_id: int, upload, purpose: str) -> BatchFile:
    file_id = "file-" + secrets.token_hex(12)
    name = selectors.storage().save(f"{project_id}/{file_id}.jsonl", File(upload))
    return BatchFile.objects.create(id=file_id, project_id=project_id, purpose=purpose, bytes=upload.size,
                                    filename=(upload.name or "input.jsonl")[:255], storage_name=name)


def file_delete(file: BatchFile) -> None:
    selectors.storage().delete(file.storage_name)
    file.delete()


def _file_from_lines(project_id: int, purpose: str, filename: str, lines) -> BatchFile:
    file_id = "file-" + secrets.token_hex(12)
    buffer = io.BytesIO()
    for line in lines:
        buffer.write(orjson.dumps(line) + b"\n")
    content = ContentFile(buffer.getvalue())
    name = selectors.storage().save(f"{project_id}/{file_id}.jsonl", content)
    return BatchFile.objects.create(id=file_id, project_id=project_id, purpose=purpose, bytes=content.size,
                                    filename=filename, storage_name=name)


# --- creating ----------------------------------------------------------------------------------------------------


def create_anthropic(key, items: list[validate.Item]) -> Batch:
    return _store(key, "anthropic", "msgbatch_" + ids._random62(24), "anthropic", items, endpoint="/v1/messages")


def create_simple(key, api: str, items: list[validate.Item]) -> Batch:
    return _store(key, "simple", "batch_" + secrets.token_hex(12), api, items, endpoint="/v1/batch")


def create_openai(key, input_file: BatchFile, endpoint: str, metadata, parsed) -> Batch:
    """`parsed`: the input file's items, or the BadItem that fails the batch (as OpenAI does: status failed)."""
    batch_id = "batch_" + secrets.token_hex(12)
    extra = {"input_file": input_file, "metadata": metadata, "completion_window": "24h"}
    if isinstance(parsed, validate.BadItem):
        now = timezone.now()
        error = {"code": parsed.code, "message": parsed.message, "param": parsed.param, "line": parsed.line}
        return Batch.objects.create(
            id=batch_id, kind="openai", project_id=key.project_id, api_key_id=key.id, ingress_api="openai",
            endpoint=endpoint, status="ended", outcome="failed", errors={"object": "list", "data": [error]},
            expires_at=now + COMPLETION_WINDOW, ended_at=now, **extra)
    return _store(key, "openai", batch_id, "openai", parsed, endpoint=endpoint, **extra)


def _store(key, kind: str, batch_id: str, ingress_api: str, items, **fields) -> Batch:
    now = timezone.now()
    with transaction.atomic():
        batch = Batch.objects.create(
            id=batch_id, kind=kind, project_id=key.project_id, api_key_id=key.id, ingress_api=ingress_api,
            total=len(items), status="in_progress", in_progress_at=now, expires_at=now + COMPLETION_WINDOW, **fields)
        BatchItem.objects.bulk_create(
            (BatchItem(batch=batch, seq=seq, custom_id=item.custom_id, body=item.body) for seq, item in enumerate(items)),
            batch_size=2000)
        transaction.on_commit(lambda: dispatch(batch.id))
    return batch


def dispatch(batch_id: str) -> None:
    """Start running a stored batch. Creating a batch returns at once either way."""
    if settings.CELERY_TASK_ALWAYS_EAGER:  # no broker (the embedded default): this process runs it
        from . import embedded

        embedded.run_in_background(batch_id)
        return
    from . import tasks

    tasks.start.delay(batch_id)


def project_of(batch_id: str) -> int | None:
    return Batch.objects.filter(id=batch_id).values_list("project_id", flat=True).first()


def chunks_to_run(batch_id: str) -> list[list[int]]:
    """The batch's open items in chunks of GATEWAY_BATCH_CHUNK, for one task each."""
    size = settings.GATEWAY_BATCH_CHUNK
    item_ids = list(BatchItem.objects.filter(batch_id=batch_id, status__in=("pending", "running"))
                    .order_by("seq").values_list("id", flat=True))
    return [item_ids[i:i + size] for i in range(0, len(item_ids), size)]


# --- running -----------------------------------------------------------------------------------------------------


def claim_items(batch_id: str, item_ids: list[int]) -> tuple[list[BatchItem], float]:
    """Take this chunk's runnable items, each under a fresh request id and lease. Items already done are skipped
    (a task delivered twice does nothing twice); an item running under a live lease is someone else's (returned:
    how long until the earliest such lease ends, so the task can come back for it)."""
    now = timezone.now()
    batch = Batch.objects.filter(id=batch_id).only("status", "expires_at").first()
    if batch is None or batch.status not in ("in_progress",):
        return [], 0.0
    if batch.expires_at <= now:  # at once, not at beat's next tick (which may queue behind this batch's chunks)
        expire(batch_id)
        return [], 0.0
    claimed, wait = [], 0.0
    items = list(BatchItem.objects.filter(id__in=item_ids, status__in=("pending", "running")).order_by("seq"))
    held = [i for i in items if i.status == "running" and i.lease_until and i.lease_until > now]
    if held:
        wait = max((i.lease_until - now).total_seconds() for i in held)
    abandoned = [i for i in items if i.status == "running" and i not in held]
    if abandoned:
        _replay_dead_spools()
    with transaction.atomic():  # one commit for the chunk
        for item in items:
            if item in held or (item in abandoned and _recorded_before_crash(item)):
                continue
            request_id = ids.request_id()
            taken = BatchItem.objects.filter(id=item.id, status=item.status, request_id=item.request_id).update(
                status="running", request_id=request_id, lease_until=now + timedelta(seconds=lease_seconds()),
                executions=item.executions + 1, started_at=now)
            if taken:
                item.request_id, item.status = request_id, "running"
                claimed.append(item)
    return claimed, wait


def _replay_dead_spools() -> None:
    """Before judging a dead worker's items by the ledger: the ledger rows that worker spooled but had not yet
    written are replayed (a fresh writer adopts dead spools at once; a running one rescans every
    usage.ledger.RESCAN_SECONDS, well within an item's lease)."""
    from usage import ledger

    ledger.start()
    ledger.flush()


def _recorded_before_crash(item: BatchItem) -> bool:
    """A dead worker's item whose ledger row exists: it ran and was recorded, and only its answer was lost (the
    worker died between writing the row and the answer, a window of one UPDATE). Running it again would record it
    twice, so it ends errored, asking for a resubmission."""
    from usage.models import UsageRecord

    rows = UsageRecord.objects.filter(request_id=item.request_id).exclude(outcome__in=("rate_limited", "interrupted"))
    if not item.request_id or not rows.exists():
        return False
    BatchItem.objects.filter(id=item.id, status="running", request_id=item.request_id).update(
        status="errored", status_code=500, error_type="api_error", ended_at=timezone.now(),
        error_message="the worker running this request stopped after it was recorded; its answer was lost",
        result=None)
    return True


def complete_items(done: list[tuple[BatchItem, dict]]) -> None:
    """`done`: (item, outcome fields). Only the holder of an item's claim (same request id) writes its outcome."""
    now = timezone.now()
    with transaction.atomic():
        for item, outcome in done:
            BatchItem.objects.filter(id=item.id, status="running", request_id=item.request_id).update(
                ended_at=now, lease_until=None, **outcome)


def release_items(items: list[BatchItem]) -> None:
    """Rate-limited items go back to pending: they run again when the task retries."""
    for item in items:
        BatchItem.objects.filter(id=item.id, status="running", request_id=item.request_id).update(
            status="pending", request_id="", lease_until=None)


# --- ending ------------------------------------------------------------------------------------------------------


def cancel(batch: Batch) -> Batch:
    """Stop dispatching at once: pending items are canceled now, running ones finish, then the batch ends."""
    now = timezone.now()
    if Batch.objects.filter(id=batch.id, status="in_progress").update(status="canceling", cancel_initiated_at=now):
        BatchItem.objects.filter(batch_id=batch.id, status="pending").update(status="canceled", ended_at=now)
        batch.refresh_from_db()
        if batch.native:  # its items run upstream: the upstream's results will say which were canceled
            from . import native

            native.cancel(batch)
        finish_if_done(batch.id)
    batch.refresh_from_db()
    return batch


def expire_due() -> int:
    """Batches past their completion window: what has not run is `expired`; running items may still finish."""
    due = Batch.objects.filter(status__in=("in_progress", "canceling"), expires_at__lte=timezone.now())
    batch_ids = list(due.values_list("id", flat=True))
    for batch_id in batch_ids:
        expire(batch_id)
    return len(batch_ids)


def expire(batch_id: str) -> None:
    """What has not run is `expired`: pending items, and running ones whose worker is gone (lease over)."""
    now = timezone.now()
    Batch.objects.filter(id=batch_id, outcome="").update(outcome="expired")
    BatchItem.objects.filter(batch_id=batch_id, status="pending").update(status="expired", ended_at=now)
    BatchItem.objects.filter(batch_id=batch_id, status="running", lease_until__lt=now).update(
        status="expired", ended_at=now, lease_until=None)
    finish_if_done(batch_id)


def finish_if_done(batch_id: str) -> bool:
    """End the batch once no item is open: results files written, status `ended`. Runs its effect once."""
    now = timezone.now()
    with transaction.atomic():
        batch = Batch.objects.select_for_update().filter(id=batch_id).first()
        if batch is None or batch.status == "ended":
            return False
        if BatchItem.objects.filter(batch_id=batch_id, status__in=("pending", "running")).exists():
            return False
        batch.finalizing_at = batch.finalizing_at or now
        if not batch.outcome:
            batch.outcome = "canceled" if batch.status == "canceling" else "completed"
        _write_results(batch)
        batch.status, batch.ended_at = "ended", now
        batch.save()
    log.info("batch %s ended: %s", batch_id, batch.outcome)
    return True


def _write_results(batch: Batch) -> None:
    """The results as files in storage: Anthropic's JSONL behind results_url; OpenAI's output and error files."""
    items = BatchItem.objects.filter(batch_id=batch.id).order_by("seq")
    if batch.kind == "anthropic":
        batch.output_file = _file_from_lines(batch.project_id, "batch_output", f"{batch.id}_results.jsonl",
                                             (wire.anthropic_result_line(item) for item in items.iterator()))
    elif batch.kind == "openai":
        ok = items.filter(status="succeeded")
        bad = items.filter(~Q(status="succeeded"))
        if ok.exists():
            batch.output_file = _file_from_lines(batch.project_id, "batch_output", f"{batch.id}_output.jsonl",
                                                 (wire.openai_result_line(item) for item in ok.iterator()))
        if bad.exists():
            batch.error_file = _file_from_lines(batch.project_id, "batch_output", f"{batch.id}_error.jsonl",
                                                (wire.openai_result_line(item) for item in bad.iterator()))


def delete_anthropic(batch: Batch) -> None:
    """Anthropic deletes only ended batches (a running one must be canceled first)."""
    if batch.output_file_id:
        file_delete(batch.output_file)
    batch.delete()
