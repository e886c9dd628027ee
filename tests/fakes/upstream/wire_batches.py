"""Native batch APIs of both kinds, as the fake upstream serves them: Anthropic Message Batches and OpenAI
Files + Batches. Each request of a batch is answered by the fake's own chat endpoint (a loopback HTTP call, so
the script words, usage and errors are exactly a live request's), in the background; the batch ends when all
are answered.

  POST /v1/messages/batches, GET /v1/messages/batches/{id}, POST .../{id}/cancel, GET .../{id}/results (JSONL)
  POST /v1/files (multipart), GET /v1/files/{id}/content, POST /v1/batches, GET /v1/batches/{id},
  POST /v1/batches/{id}/cancel
  GET /_fake/batches: every batch the fake holds (ids, status, request count), for tests

A test may hold a batch open: a request whose text has `BATCH_HOLD` keeps the batch `in_progress` until
POST /_fake/batches/release.
"""

import asyncio
import itertools
import time

import aiohttp
import orjson
from aiohttp import web

from . import wire_anthropic, wire_openai

BATCHES = web.AppKey("batches", dict)
_ids = itertools.count(1)


def register(app: web.Application) -> None:
    app[BATCHES] = {"batches": {}, "files": {}, "tasks": set(), "released": {"all": False}}
    add = app.router
    add.add_post("/v1/messages/batches", anthropic_create)
    add.add_get("/v1/messages/batches/{id}", anthropic_get)
    add.add_post("/v1/messages/batches/{id}/cancel", anthropic_cancel)
    add.add_get("/v1/messages/batches/{id}/results", anthropic_results)
    add.add_post("/v1/files", openai_file_create)
    add.add_get("/v1/files/{id}/content", openai_file_content)
    add.add_post("/v1/batches", openai_create)
    add.add_get("/v1/batches/{id}", openai_get)
    add.add_post("/v1/batches/{id}/cancel", openai_cancel)
    add.add_get("/_fake/batches", fake_batches)
    add.add_post("/_fake/batches/release", fake_release)


def _json(data, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _key(request) -> str:
    from .server import STATE

    return request.app[STATE].key


def _store(request) -> dict:
    return request.app[BATCHES]


def _start(request, batch: dict, path: str, headers: dict) -> None:
    base = f"{request.scheme}://{request.host}"
    task = asyncio.get_running_loop().create_task(_run(_store(request), batch, base + path, headers))
    _store(request)["tasks"].add(task)
    task.add_done_callback(_store(request)["tasks"].discard)


async def _run(store: dict, batch: dict, url: str, headers: dict) -> None:
    """Answer each request through the fake's own endpoint, four at a time."""
    limit = asyncio.Semaphore(4)

    async def one(session, custom_id, body):
        async with limit:
            if batch["cancel"]:
                batch["results"][custom_id] = (None, None)
                return
            async with session.post(url, data=orjson.dumps(body), headers=headers) as response:
                batch["results"][custom_id] = (response.status, await response.read())

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one(session, cid, body) for cid, body in batch["requests"]))
    while batch["hold"] and not store["released"]["all"] and not batch["cancel"]:
        await asyncio.sleep(0.05)
    batch["ended_at"] = time.time()


# --- Anthropic ------------------------------------------------------------------------------------------------


async def anthropic_create(request: web.Request) -> web.Response:
    if not wire_anthropic.auth_ok(request.headers, _key(request)):
        return web.Response(body=wire_anthropic.error_body(401, None, "req_fake_batch"), status=401)
    body = orjson.loads(await request.read())
    batch = {"id": f"msgbatch_fake_{next(_ids):06d}", "kind": "anthropic", "created_at": time.time(),
             "requests": [(r["custom_id"], r["params"]) for r in body["requests"]], "results": {}, "cancel": False,
             "ended_at": None, "hold": b"BATCH_HOLD" in orjson.dumps(body)}
    _store(request)["batches"][batch["id"]] = batch
    _start(request, batch, "/v1/messages", {"x-api-key": request.headers.get("x-api-key", ""),
                                            "anthropic-version": "2023-06-01", "content-type": "application/json"})
    return _json(_anthropic_view(request, batch))


def _anthropic_view(request, batch: dict) -> dict:
    ended = batch["ended_at"] is not None
    kinds = [_anthropic_type(*batch["results"][cid]) for cid, _ in batch["requests"] if cid in batch["results"]]
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t else None  # noqa: E731
    return {
        "id": batch["id"], "type": "message_batch",
        "processing_status": "ended" if ended else ("canceling" if batch["cancel"] else "in_progress"),
        "request_counts": {"processing": 0 if ended else len(batch["requests"]) - len(kinds),
                           "succeeded": kinds.count("succeeded"), "errored": kinds.count("errored"),
                           "canceled": kinds.count("canceled"), "expired": 0},
        "created_at": iso(batch["created_at"]), "ended_at": iso(batch["ended_at"]),
        "expires_at": iso(batch["created_at"] + 86400), "archived_at": None, "cancel_initiated_at": None,
        "results_url": f"{request.scheme}://{request.host}/v1/messages/batches/{batch['id']}/results" if ended else None,
    }


def _anthropic_type(status, _body) -> str:
    return "canceled" if status is None else "succeeded" if status == 200 else "errored"


def _batch(request, kind: str) -> dict | None:
    batch = _store(request)["batches"].get(request.match_info["id"])
    return batch if batch and batch["kind"] == kind else None


async def anthropic_get(request: web.Request) -> web.Response:
    batch = _batch(request, "anthropic")
    return _json(_anthropic_view(request, batch)) if batch else _json({"type": "error"}, 404)


async def anthropic_cancel(request: web.Request) -> web.Response:
    batch = _batch(request, "anthropic")
    if not batch:
        return _json({"type": "error"}, 404)
    batch["cancel"] = True
    return _json(_anthropic_view(request, batch))


async def anthropic_results(request: web.Request) -> web.Response:
    batch = _batch(request, "anthropic")
    if not batch or batch["ended_at"] is None:
        return _json({"type": "error"}, 404)
    lines = []
    for custom_id, _ in batch["requests"]:
        status, raw = batch["results"][custom_id]
        kind = _anthropic_type(status, raw)
        result = {"type": kind}
        if kind == "succeeded":
            result["message"] = orjson.loads(raw)
        elif kind == "errored":
            result["error"] = orjson.loads(raw)
        lines.append(orjson.dumps({"custom_id": custom_id, "result": result}))
    return web.Response(body=b"\n".join(lines) + b"\n", content_type="application/binary")


# --- OpenAI ---------------------------------------------------------------------------------------------------


async def openai_file_create(request: web.Request) -> web.Response:
    if not wire_openai.auth_ok(request.headers, _key(request)):
        return web.Response(body=wire_openai.error_body(401, None, ""), status=401)
    form = await request.post()
    content = form["file"].file.read()
    file_id = f"file-fake{next(_ids):06d}"
    _store(request)["files"][file_id] = content
    return _json({"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                  "filename": form["file"].filename, "purpose": form.get("purpose")})


async def openai_file_content(request: web.Request) -> web.Response:
    content = _store(request)["files"].get(request.match_info["id"])
    if content is None:
        return _json({"error": {"message": "No such file"}}, 404)
    return web.Response(body=content, content_type="application/octet-stream")


async def openai_create(request: web.Request) -> web.Response:
    if not wire_openai.auth_ok(request.headers, _key(request)):
        return web.Response(body=wire_openai.error_body(401, None, ""), status=401)
    body = orjson.loads(await request.read())
    content = _store(request)["files"][body["input_file_id"]]
    lines = [orjson.loads(line) for line in content.splitlines() if line.strip()]
    batch = {"id": f"batch_fake{next(_ids):06d}", "kind": "openai", "created_at": time.time(),
             "input_file_id": body["input_file_id"], "requests": [(x["custom_id"], x["body"]) for x in lines],
             "results": {}, "cancel": False, "ended_at": None, "hold": b"BATCH_HOLD" in content, "files": {}}
    _store(request)["batches"][batch["id"]] = batch
    _start(request, batch, "/v1/chat/completions", {"authorization": request.headers.get("authorization", ""),
                                                    "content-type": "application/json"})
    return _json(_openai_view(request, batch))


def _openai_view(request, batch: dict) -> dict:
    ended = batch["ended_at"] is not None
    if ended and not batch["files"]:
        _openai_files(request, batch)
    done = [batch["results"][cid] for cid, _ in batch["requests"] if cid in batch["results"]]
    status = ("cancelled" if batch["cancel"] else "completed") if ended else (
        "cancelling" if batch["cancel"] else "in_progress")
    return {"id": batch["id"], "object": "batch", "endpoint": "/v1/chat/completions", "status": status,
            "input_file_id": batch["input_file_id"], "completion_window": "24h", "created_at": int(batch["created_at"]),
            "output_file_id": batch["files"].get("output"), "error_file_id": batch["files"].get("error"),
            "request_counts": {"total": len(batch["requests"]), "completed": sum(1 for s, _ in done if s == 200),
                               "failed": sum(1 for s, _ in done if s != 200)}}


def _openai_files(request, batch: dict) -> None:
    output, errors = [], []
    for n, (custom_id, _) in enumerate(batch["requests"]):
        status, raw = batch["results"][custom_id]
        line = {"id": f"batch_req_fake{n}", "custom_id": custom_id, "response": None, "error": None}
        if status is None:
            line["error"] = {"code": "batch_cancelled", "message": "cancelled"}
        else:
            line["response"] = {"status_code": status, "request_id": f"req_fake_b{n}", "body": orjson.loads(raw)}
        (output if status == 200 else errors).append(orjson.dumps(line))
    for name, lines in (("output", output), ("error", errors)):
        if lines:
            file_id = f"file-fake{next(_ids):06d}"
            _store(request)["files"][file_id] = b"\n".join(lines) + b"\n"
            batch["files"][name] = file_id


async def openai_get(request: web.Request) -> web.Response:
    batch = _batch(request, "openai")
    return _json(_openai_view(request, batch)) if batch else _json({"error": {"message": "not found"}}, 404)


async def openai_cancel(request: web.Request) -> web.Response:
    batch = _batch(request, "openai")
    if not batch:
        return _json({"error": {"message": "not found"}}, 404)
    batch["cancel"] = True
    return _json(_openai_view(request, batch))


# --- inspection -----------------------------------------------------------------------------------------------


async def fake_batches(request: web.Request) -> web.Response:
    return _json([{"id": b["id"], "kind": b["kind"], "requests": len(b["requests"]), "ended": b["ended_at"] is not None,
                   "cancel": b["cancel"]} for b in _store(request)["batches"].values()])


async def fake_release(request: web.Request) -> web.Response:
    _store(request)["released"]["all"] = True
    return _json({})
