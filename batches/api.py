"""Batch endpoints: the Anthropic Message Batches API, the OpenAI Files and Batches APIs, and the simple
`/v1/batch`. Each adapts HTTP to batches/services.py (writes) or batches/selectors.py (reads) and renders with
batches/wire.py; errors are GatewayErrors, rendered by the gateway's one handler in the caller's API format
(/v1/messages/... as Anthropic, the rest as OpenAI). Everything is scoped to the key's project: another
project's batch or file is not found (404).
"""

from asgiref.sync import sync_to_async
from django.http import FileResponse, HttpRequest, JsonResponse
from ninja import Router

from proxy import hop, routing
from proxy.auth import GatewayKey
from proxy.errors import UPLOAD_PATHS, InvalidRequest, RequestTooLarge, check_length, json_object

from . import selectors, services, validate, wire
from .models import Batch, BatchFile

router = Router(tags=["batches"])
KEY = GatewayKey()


def _json_body(request: HttpRequest) -> dict:
    check_length(request.META.get("CONTENT_LENGTH"), request.path_info)
    return json_object(_raw_body(request) or b"{}")


def _raw_body(request: HttpRequest) -> bytes:
    """request.body refuses a body over DATA_UPLOAD_MAX_MEMORY_SIZE (the general limit): an upload path's body,
    already held to its own limit as it was read (gateway_site/asgi.py), is read from its stream instead."""
    if request.path_info in UPLOAD_PATHS and not hasattr(request, "_body"):
        return request.read()
    return request.body


def _limit(request: HttpRequest, default: int = 20, most: int = 1000) -> int:
    raw = request.GET.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise InvalidRequest(f"limit: must be a whole number from 1 to {most}", param="limit")
    return int(raw)


def _base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


# --- Anthropic Message Batches ----------------------------------------------------------------------------------


ANTHROPIC_CREATE = {  # documentation only (the OpenAPI page, the fuzz suite): batches/validate.py checks bodies
    "type": "object",
    "required": ["requests"],
    "properties": {"requests": {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["custom_id", "params"],
        "properties": {"custom_id": {"type": "string", "minLength": 1, "maxLength": 64},
                       "params": {"type": "object", "description": "A Messages request body (stream: false)."}}}}},
}  # fmt: skip
OPENAI_CREATE = {
    "type": "object",
    "required": ["input_file_id", "endpoint", "completion_window"],
    "properties": {"input_file_id": {"type": "string"}, "endpoint": {"type": "string", "enum": ["/v1/chat/completions"]},
                   "completion_window": {"type": "string", "enum": ["24h"]},
                   "metadata": {"type": "object", "additionalProperties": {"type": "string"}}},
}  # fmt: skip


def _json_request(schema: dict) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


@router.post("/v1/messages/batches", auth=KEY, summary="Create a Message Batch (Anthropic)",
             openapi_extra=_json_request(ANTHROPIC_CREATE))
async def anthropic_create(request: HttpRequest):
    hop.check(request.headers)  # batches/native.py submitting to this gateway itself: 508, not a batch per tick
    body, snapshot = _json_body(request), await routing.snapshot()
    items = await sync_to_async(validate.anthropic_requests, thread_sensitive=False)(body, snapshot, request.auth)
    batch = await sync_to_async(services.create_anthropic)(request.auth, items)
    return await _anthropic(request, batch)


@router.get("/v1/messages/batches", auth=KEY, summary="List Message Batches (Anthropic)")
async def anthropic_list(request: HttpRequest):
    limit = _limit(request)
    rows, has_more = await sync_to_async(selectors.page)(
        Batch.objects.filter(project_id=request.auth.project_id, kind="anthropic"), limit=limit,
        after_id=request.GET.get("after_id"), before_id=request.GET.get("before_id"))
    data = [await _anthropic_dict(request, batch) for batch in rows]
    return JsonResponse({"data": data, "has_more": has_more, "first_id": data[0]["id"] if data else None,
                         "last_id": data[-1]["id"] if data else None})


@router.get("/v1/messages/batches/{batch_id}", auth=KEY, summary="A Message Batch (Anthropic)")
async def anthropic_retrieve(request: HttpRequest, batch_id: str):
    return await _anthropic(request, await _batch(request, batch_id, "anthropic"))


@router.post("/v1/messages/batches/{batch_id}/cancel", auth=KEY, summary="Cancel a Message Batch (Anthropic)")
async def anthropic_cancel(request: HttpRequest, batch_id: str):
    batch = await sync_to_async(services.cancel)(await _batch(request, batch_id, "anthropic"))
    return await _anthropic(request, batch)


@router.delete("/v1/messages/batches/{batch_id}", auth=KEY, summary="Delete an ended Message Batch (Anthropic)")
async def anthropic_delete(request: HttpRequest, batch_id: str):
    batch = await _batch(request, batch_id, "anthropic")
    if batch.status != "ended":
        raise InvalidRequest(f"Message Batch {batch_id} is still {batch.status}; cancel it and wait for it to end "
                             "before deleting it")
    await sync_to_async(services.delete_anthropic)(batch)
    return JsonResponse({"id": batch_id, "type": "message_batch_deleted"})


@router.get("/v1/messages/batches/{batch_id}/results", auth=KEY, summary="A Message Batch's results (JSONL)")
async def anthropic_results(request: HttpRequest, batch_id: str):
    batch = await _batch(request, batch_id, "anthropic")
    if batch.status != "ended" or batch.output_file is None:
        raise InvalidRequest(f"Message Batch {batch_id} has not ended yet; its results are not available")
    return await _file_response(batch.output_file, "application/x-jsonl")


async def _anthropic(request, batch: Batch) -> JsonResponse:
    return JsonResponse(await _anthropic_dict(request, batch))


async def _anthropic_dict(request, batch: Batch) -> dict:
    return wire.anthropic_batch(batch, await sync_to_async(selectors.counts)(batch.id), _base_url(request))


async def _batch(request, batch_id: str, kind: str) -> Batch:
    return await sync_to_async(selectors.batch_for)(request.auth.project_id, batch_id, kind)


# --- OpenAI Files -------------------------------------------------------------------------------------------------


@router.post("/v1/files", auth=KEY, summary="Upload a batch input file (OpenAI)")
async def file_upload(request: HttpRequest):
    return JsonResponse(wire.openai_file(await sync_to_async(_file_upload)(request)))


def _file_upload(request) -> BatchFile:
    upload, purpose = request.FILES.get("file"), request.POST.get("purpose")
    if upload is None:
        raise InvalidRequest("file: a multipart field named 'file' is required", param="file")
    if purpose != "batch":
        raise InvalidRequest("purpose: only 'batch' files are accepted here", param="purpose")
    if upload.size > validate.max_bytes():
        raise RequestTooLarge(f"file is {upload.size} bytes; a batch input file may be at most {validate.max_bytes()}")
    return services.file_create(request.auth.project_id, upload, purpose)


@router.get("/v1/files", auth=KEY, summary="List files (OpenAI)")
async def file_list(request: HttpRequest):
    files = BatchFile.objects.filter(project_id=request.auth.project_id)
    if request.GET.get("purpose"):
        files = files.filter(purpose=request.GET["purpose"])
    rows, has_more = await sync_to_async(selectors.page)(files, limit=_limit(request, 10000, 10000),
                                                         after_id=request.GET.get("after"))
    return JsonResponse(_openai_list([wire.openai_file(f) for f in rows], has_more))


@router.get("/v1/files/{file_id}", auth=KEY, summary="A file (OpenAI)")
async def file_retrieve(request: HttpRequest, file_id: str):
    return JsonResponse(wire.openai_file(await _file(request, file_id)))


@router.get("/v1/files/{file_id}/content", auth=KEY, summary="A file's content (OpenAI)")
async def file_content(request: HttpRequest, file_id: str):
    return await _file_response(await _file(request, file_id), "application/octet-stream")


@router.delete("/v1/files/{file_id}", auth=KEY, summary="Delete a file (OpenAI)")
async def file_delete(request: HttpRequest, file_id: str):
    await sync_to_async(services.file_delete)(await _file(request, file_id))
    return JsonResponse({"id": file_id, "object": "file", "deleted": True})


async def _file(request, file_id: str) -> BatchFile:
    return await sync_to_async(selectors.file_for)(request.auth.project_id, file_id)


async def _file_response(file: BatchFile, content_type: str) -> FileResponse:
    handle = await sync_to_async(selectors.storage().open)(file.storage_name, "rb")
    return FileResponse(handle, content_type=content_type)


def _openai_list(data: list[dict], has_more: bool) -> dict:
    return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None, "has_more": has_more}


# --- OpenAI Batches -------------------------------------------------------------------------------------------------


@router.post("/v1/batches", auth=KEY, summary="Create a batch from an uploaded file (OpenAI)",
             openapi_extra=_json_request(OPENAI_CREATE))
async def openai_create(request: HttpRequest):
    hop.check(request.headers)
    body, snapshot = _json_body(request), await routing.snapshot()
    endpoint = body.get("endpoint")
    if endpoint not in validate.OPENAI_ENDPOINTS:
        raise InvalidRequest(f"endpoint: must be one of {', '.join(validate.OPENAI_ENDPOINTS)}", param="endpoint")
    if body.get("completion_window") != "24h":
        raise InvalidRequest("completion_window: must be '24h'", param="completion_window")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidRequest("metadata: must be an object of strings", param="metadata")
    input_file = await _file(request, str(body.get("input_file_id")))
    content = await sync_to_async(_read)(input_file)
    parsed = await sync_to_async(validate.openai_lines, thread_sensitive=False)(content, endpoint, snapshot,
                                                                                 request.auth)
    batch = await sync_to_async(services.create_openai)(request.auth, input_file, endpoint, metadata, parsed)
    return await _openai(batch)


def _read(file: BatchFile) -> bytes:
    with selectors.storage().open(file.storage_name, "rb") as handle:
        return handle.read()


@router.get("/v1/batches", auth=KEY, summary="List batches (OpenAI)")
async def openai_list(request: HttpRequest):
    rows, has_more = await sync_to_async(selectors.page)(
        Batch.objects.filter(project_id=request.auth.project_id, kind="openai"), limit=_limit(request, 20, 100),
        after_id=request.GET.get("after"))
    return JsonResponse(_openai_list([await _openai_dict(batch) for batch in rows], has_more))


@router.get("/v1/batches/{batch_id}", auth=KEY, summary="A batch (OpenAI)")
async def openai_retrieve(request: HttpRequest, batch_id: str):
    return await _openai(await _batch(request, batch_id, "openai"))


@router.post("/v1/batches/{batch_id}/cancel", auth=KEY, summary="Cancel a batch (OpenAI)")
async def openai_cancel(request: HttpRequest, batch_id: str):
    return await _openai(await sync_to_async(services.cancel)(await _batch(request, batch_id, "openai")))


async def _openai(batch: Batch) -> JsonResponse:
    return JsonResponse(await _openai_dict(batch))


async def _openai_dict(batch: Batch) -> dict:
    return wire.openai_batch(batch, await sync_to_async(selectors.counts)(batch.id))


# --- /v1/batch ------------------------------------------------------------------------------------------------------

SIMPLE_REQUEST = {
    "type": "object",
    "required": ["requests"],
    "properties": {
        "api": {"type": "string", "enum": ["openai", "anthropic"], "default": "openai",
                "description": "The API every request body speaks: OpenAI Chat Completions or Anthropic Messages."},
        "requests": {"type": "array", "maxItems": 100000, "items": {
            "type": "object", "required": ["body"],
            "properties": {"custom_id": {"type": "string", "description": "Yours, unique in the batch "
                                         "(default request-<index>)"},
                           "body": {"type": "object", "description": "A chat request, as its endpoint takes it"}}}},
    },
}
SIMPLE_RESPONSE = {
    "description": "The batch: status (in_progress, canceling, ended), outcome once ended (completed, canceled, "
                   "expired), request_counts (total, pending, running, succeeded, errored, canceled, expired) and, "
                   "once ended, results: [{custom_id, status, status_code, body}] in request order.",
}


@router.post("/v1/batch", auth=KEY, summary="Run a list of chat requests in the background",
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": SIMPLE_REQUEST}}},
                            "responses": {200: SIMPLE_RESPONSE}})
async def simple_create(request: HttpRequest):
    body, snapshot = _json_body(request), await routing.snapshot()
    api, items = await sync_to_async(validate.simple_requests, thread_sensitive=False)(body, snapshot, request.auth)
    batch = await sync_to_async(services.create_simple)(request.auth, api, items)
    return JsonResponse(wire.simple_batch(batch, await sync_to_async(selectors.counts)(batch.id)))


@router.get("/v1/batch/{batch_id}", auth=KEY, summary="A /v1/batch batch: status, counts and, once ended, results",
            openapi_extra={"responses": {200: SIMPLE_RESPONSE}})
async def simple_retrieve(request: HttpRequest, batch_id: str):
    batch = await _batch(request, batch_id, "simple")
    return JsonResponse(await sync_to_async(_simple)(batch))


def _simple(batch: Batch) -> dict:
    items = list(selectors.items_of(batch.id)) if batch.status == "ended" else None
    return wire.simple_batch(batch, selectors.counts(batch.id), items)


@router.post("/v1/batch/{batch_id}/cancel", auth=KEY, summary="Cancel a /v1/batch batch")
async def simple_cancel(request: HttpRequest, batch_id: str):
    batch = await sync_to_async(services.cancel)(await _batch(request, batch_id, "simple"))
    return JsonResponse(await sync_to_async(_simple)(batch))
