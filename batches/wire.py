"""Batches, files and result lines in each API's own shapes (the anthropic and openai SDKs' types). Pure
functions: models and counts in, dicts out. One Batch status (`in_progress`/`canceling`/`ended` + `outcome`)
becomes each API's vocabulary here and nowhere else."""

import orjson

from proxy import formats
from proxy.errors import GatewayError

OPENAI_ENDED = {"completed": "completed", "canceled": "cancelled", "expired": "expired", "failed": "failed"}


def _iso(when) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when else None


def _unix(when) -> int | None:
    return int(when.timestamp()) if when else None


# --- Anthropic Message Batches ---------------------------------------------------------------------------------


def anthropic_batch(batch, counts: dict, base_url: str) -> dict:
    ended = batch.status == "ended"
    return {
        "id": batch.id,
        "type": "message_batch",
        "processing_status": batch.status if batch.status in ("in_progress", "canceling", "ended") else "in_progress",
        "request_counts": {
            "processing": counts["pending"] + counts["running"],
            "succeeded": counts["succeeded"],
            "errored": counts["errored"],
            "canceled": counts["canceled"],
            "expired": counts["expired"],
        },
        "ended_at": _iso(batch.ended_at),
        "created_at": _iso(batch.created_at),
        "expires_at": _iso(batch.expires_at),
        "archived_at": None,
        "cancel_initiated_at": _iso(batch.cancel_initiated_at),
        "results_url": f"{base_url}/v1/messages/batches/{batch.id}/results" if ended else None,
    }


def anthropic_result_line(item) -> dict:
    if item.status == "succeeded":
        result = {"type": "succeeded", "message": item.result}
    elif item.status == "errored":
        result = {"type": "errored", "error": item.result or error_body("anthropic", item)}
    else:  # canceled | expired
        result = {"type": item.status}
    return {"custom_id": item.custom_id, "result": result}


# --- OpenAI Files and Batches ----------------------------------------------------------------------------------


def openai_file(file) -> dict:
    return {
        "id": file.id,
        "object": "file",
        "bytes": file.bytes,
        "created_at": _unix(file.created_at),
        "filename": file.filename,
        "purpose": file.purpose,
        "status": "processed",
        "status_details": None,
        "expires_at": None,
    }


def openai_status(batch) -> str:
    if batch.status == "ended":
        return OPENAI_ENDED.get(batch.outcome, "completed")
    if batch.status == "canceling":
        return "cancelling"
    return "validating" if batch.status == "validating" else "in_progress"


def openai_batch(batch, counts: dict) -> dict:
    outcome = batch.outcome if batch.status == "ended" else ""
    return {
        "id": batch.id,
        "object": "batch",
        "endpoint": batch.endpoint,
        "errors": batch.errors,
        "input_file_id": batch.input_file_id,
        "completion_window": batch.completion_window,
        "status": openai_status(batch),
        "output_file_id": batch.output_file_id,
        "error_file_id": batch.error_file_id,
        "created_at": _unix(batch.created_at),
        "in_progress_at": _unix(batch.in_progress_at),
        "expires_at": _unix(batch.expires_at),
        "finalizing_at": _unix(batch.finalizing_at),
        "completed_at": _unix(batch.ended_at) if outcome == "completed" else None,
        "failed_at": _unix(batch.ended_at) if outcome == "failed" else None,
        "expired_at": _unix(batch.ended_at) if outcome == "expired" else None,
        "cancelling_at": _unix(batch.cancel_initiated_at),
        "cancelled_at": _unix(batch.ended_at) if outcome == "canceled" else None,
        "request_counts": {
            "total": batch.total,
            "completed": counts["succeeded"],
            "failed": counts["errored"] + counts["expired"] + counts["canceled"],
        },
        "metadata": batch.metadata,
    }


def openai_result_line(item) -> dict:
    line = {"id": f"batch_req_{item.id:024d}", "custom_id": item.custom_id, "response": None, "error": None}
    if item.status in ("succeeded", "errored"):
        body = item.result if item.result is not None else error_body("openai", item)
        line["response"] = {"status_code": item.status_code or 500, "request_id": item.request_id, "body": body}
    elif item.status == "expired":
        line["error"] = {"code": "batch_expired",
                         "message": "This request could not be executed before the completion window expired."}
    else:
        line["error"] = {"code": "batch_cancelled", "message": "This request was not executed: the batch was cancelled."}
    return line


# --- /v1/batch (the simple one) ---------------------------------------------------------------------------------


def simple_batch(batch, counts: dict, items=None) -> dict:
    body = {
        "id": batch.id,
        "object": "batch",
        "api": batch.ingress_api,
        "status": batch.status,
        "outcome": batch.outcome or None,
        "request_counts": {"total": batch.total, **counts},
        "created_at": _unix(batch.created_at),
        "expires_at": _unix(batch.expires_at),
        "ended_at": _unix(batch.ended_at),
        "results": None,
    }
    if items is not None:
        body["results"] = [
            {"custom_id": item.custom_id, "status": item.status, "status_code": item.status_code,
             "body": item.result if item.result is not None or item.status not in ("errored",)
             else error_body(batch.ingress_api, item)}
            for item in items
        ]
    return body


def error_body(api: str, item) -> dict:
    """An item's error in its API's error JSON, from the item's stored kind and message."""
    _, content, _ = formats.get(api).render_error(
        GatewayError(item.error_message or "request failed", kind=item.error_type or "api_error"))
    return orjson.loads(content)
