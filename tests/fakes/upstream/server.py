"""aiohttp app, HTTP flow shared by both formats, inspection endpoints, and the two ways to run it
(in-process thread: FakeUpstream; subprocess: FakeUpstreamProcess)."""

from __future__ import annotations

import asyncio
import collections
import itertools
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
from aiohttp import web

from . import (
    script, wire_anthropic, wire_batches, wire_bedrock, wire_dialects, wire_oauth, wire_openai, wire_reports,
    wire_responses, wire_vertex,
)
from .prompt_cache import PromptCache

DEFAULT_KEY = "sk-fake"
DEFAULT_CHUNKS = 20
DEFAULT_MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1", "gpt-4o", "gpt-4o-mini")
HANG_SECONDS = 30.0
READY_PREFIX = "FAKE_UPSTREAM_READY "
REPO_ROOT = Path(__file__).resolve().parents[3]
JSON = "application/json"
SSE = "text/event-stream; charset=utf-8"


class State:
    """Per-server configuration and the data the inspection endpoints expose."""

    def __init__(self, *, chunks: int = DEFAULT_CHUNKS, key: str = DEFAULT_KEY, models=DEFAULT_MODELS,
                 coalesce: bool = False, prompt_cache: bool = False) -> None:
        self.chunks = chunks
        self.coalesce = coalesce
        self.simulate_prompt_cache = prompt_cache  # see prompt_cache.py
        self.prompt_cache = PromptCache()
        self.key = key
        self.models = tuple(models)
        self.requests: collections.deque = collections.deque(maxlen=200)
        self.stats: collections.Counter = collections.Counter()
        self.fail_first_seen: set[str] = set()
        self.ids = itertools.count(1)
        self.started = time.monotonic()

    def reset(self) -> None:
        self.requests.clear()
        self.stats.clear()
        self.fail_first_seen.clear()
        self.prompt_cache = PromptCache()


class Ctx:
    __slots__ = ("model", "msg_id", "chunks", "interleave", "include_usage", "usage", "first_tool_n", "body")


STATE = web.AppKey("state", State)


def _record(request: web.Request, state: State, body) -> None:
    state.stats[request.path] += 1
    state.requests.append({
        "method": request.method, "path": request.path, "query": request.query_string,
        "headers": {k.lower(): v for k, v in request.headers.items()}, "body": body,
    })


async def _read(request: web.Request, state: State):
    raw = await request.read()
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = raw.decode("utf-8", "replace")
        _record(request, state, body)
        return raw, body, False
    _record(request, state, body)
    return raw, body, True


def _error(wire, status: int, rid: str, message: str | None = None) -> web.Response:
    headers = {wire.REQUEST_ID_HEADER: rid}
    if status in (429, 529):
        headers["retry-after"] = "1"
    if hasattr(wire, "error_headers"):  # a cloud's error names its exception in a header (wire_bedrock)
        headers.update(wire.error_headers(status))
    return web.Response(status=status, body=wire.error_body(status, message, rid), content_type=JSON,
                        headers=headers)


def _header_int(request: web.Request, name: str, default: int) -> int:
    v = request.headers.get(name)
    if v is None:
        return default
    try:
        return max(1, min(int(v), 100_000))
    except ValueError:
        return default


async def _generate(request: web.Request, wire, anthropic: bool) -> web.StreamResponse:
    state = request.app[STATE]
    n = next(state.ids)
    rid = f"req_fake_{n:06d}"
    raw, body, ok = await _read(request, state)
    if not wire.auth_ok(request.headers, state.key):
        return _error(wire, 401, rid)
    envelope = getattr(wire, "envelope", None)  # a cloud's envelope: the model (and stream) in the URL
    if envelope is not None and ok:
        problem, body = envelope(request, body)
        if problem:
            return _error(wire, 400, rid, problem)
    elif anthropic and "anthropic-version" not in request.headers:
        return _error(wire, 400, rid, "anthropic-version: header is required")
    problem = wire.validate(body) if ok else "request body is not valid JSON"
    if problem:
        return _error(wire, 400, rid, problem)

    try:
        p, prior_tools = wire.plan(body, raw, state.fail_first_seen)
    except (AttributeError, KeyError, TypeError, ValueError):  # a body no real API would accept (fuzzed): its 400
        return _error(wire, 400, rid, "the fake upstream cannot read this request")
    stream = body.get("stream") is True
    hang = _header_int(request, "x-fake-hang-ms", int(HANG_SECONDS * 1000)) / 1000
    if p.slow_ms:
        await asyncio.sleep(p.slow_ms / 1000)
    fail = p.fail
    if fail == "timeout" or (fail == "hang_midstream" and not stream):
        await asyncio.sleep(hang)
        fail = None
    elif fail in script.HTTP_FAILS:
        return _error(wire, int(fail), rid)
    elif fail in ("midstream", "early_eof") and not stream:
        fail = None  # a non-stream retry after a broken stream succeeds (Claude Code does exactly that)

    ctx = Ctx()
    ctx.model = body["model"]
    ctx.msg_id = f"msg_fake_{n:06d}" if anthropic else f"chatcmpl-fake{n:06d}"
    ctx.chunks = _header_int(request, "x-fake-chunks", state.chunks)
    ctx.interleave = request.headers.get("x-fake-interleave", "1") != "0"
    opts = body.get("stream_options")
    ctx.include_usage = isinstance(opts, dict) and opts.get("include_usage") is True
    ctx.usage = script.usage_numbers(p, len(raw), script.count_pieces(p, ctx.chunks))
    if not p.usage and (state.simulate_prompt_cache or request.headers.get("x-fake-prompt-cache") == "1"):
        ctx.usage = state.prompt_cache.usage("anthropic" if anthropic else "openai", body, ctx.usage)
    wire_reports.served(request, anthropic, ctx.model, ctx.usage)  # the vendors' usage reports count it
    ctx.first_tool_n = prior_tools + 1
    ctx.body = body
    headers = {wire.REQUEST_ID_HEADER: rid}

    if not stream:
        payload = wire.render(p, ctx)
        if fail != "truncate":
            return web.Response(body=payload, content_type=JSON, headers=headers)
        resp = web.StreamResponse(headers=headers)  # Content-Length promised, half the body, then close
        resp.content_type = JSON
        resp.content_length = len(payload)
        await resp.prepare(request)
        await resp.write(payload[: len(payload) // 2])
        _close(request)
        return resp

    events, cut = wire.render_stream(p, ctx)
    headers["Content-Type"] = getattr(wire, "STREAM_CONTENT_TYPE", SSE)
    headers["Cache-Control"] = "no-cache"
    resp = web.StreamResponse(headers=headers)
    await resp.prepare(request)
    delay = p.chunk_ms / 1000
    co = request.headers.get("x-fake-coalesce")
    coalesce = state.coalesce if co is None else co == "1"
    if fail in script.STREAM_FAILS:
        await _write(resp, events[:cut], delay, coalesce)
        if fail == "midstream":
            await resp.write(wire.stream_error(rid))
        elif fail == "truncate":
            _close(request)  # flushes what was written, then FIN without the final chunk
        elif fail == "hang_midstream":
            await asyncio.sleep(hang)
            await _write(resp, events[cut:], delay, coalesce)
        return resp
    await _write(resp, events, delay, coalesce)
    return resp


def _close(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.close()


async def _write(resp: web.StreamResponse, events: list[bytes], delay: float, coalesce: bool) -> None:
    """One write per event, as a real upstream delivers them (SLOW_CHUNKS: a pause between events), or all
    events in one write when coalescing (about 2x cheaper for the fake; for load tests)."""
    if coalesce and not delay:
        if events:
            await resp.write(b"".join(events))
        return
    first = True
    for ev in events:
        if delay and not first:
            await asyncio.sleep(delay)
        first = False
        await resp.write(ev)


async def messages(request: web.Request) -> web.StreamResponse:
    return await _generate(request, wire_anthropic, True)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _generate(request, wire_openai, False)


async def responses(request: web.Request) -> web.StreamResponse:
    return await _generate(request, wire_responses, False)


async def count_tokens(request: web.Request) -> web.Response:
    state = request.app[STATE]
    rid = f"req_fake_{next(state.ids):06d}"
    raw, body, ok = await _read(request, state)
    w = wire_anthropic
    if not w.auth_ok(request.headers, state.key):
        return _error(w, 401, rid)
    if "anthropic-version" not in request.headers:
        return _error(w, 400, rid, "anthropic-version: header is required")
    if not ok or not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return _error(w, 400, rid, "messages: Field required")
    return web.Response(body=orjson.dumps({"input_tokens": w.count_tokens(body)}), content_type=JSON,
                        headers={w.REQUEST_ID_HEADER: rid})


def _anthropic_model(mid: str) -> dict:
    return {"type": "model", "id": mid, "display_name": mid, "created_at": "2025-01-01T00:00:00Z"}


def _openai_model(mid: str) -> dict:
    return {"id": mid, "object": "model", "created": wire_openai.CREATED, "owned_by": "fake-upstream"}


async def models(request: web.Request) -> web.Response:
    """Anthropic shape if the request carries anthropic-version or x-api-key (docs/translation.md §0), else OpenAI."""
    state = request.app[STATE]
    rid = f"req_fake_{next(state.ids):06d}"
    _record(request, state, None)
    is_anthropic = "anthropic-version" in request.headers or "x-api-key" in request.headers
    w = wire_anthropic if is_anthropic else wire_openai
    if not w.auth_ok(request.headers, state.key):
        return _error(w, 401, rid)
    mid = request.match_info.get("model_id")
    headers = {w.REQUEST_ID_HEADER: rid}
    if mid is not None:
        if mid not in state.models:
            return _error(w, 404, rid, f"model: {mid}")
        one = _anthropic_model(mid) if is_anthropic else _openai_model(mid)
        return web.Response(body=orjson.dumps(one), content_type=JSON, headers=headers)
    if is_anthropic:
        data = [_anthropic_model(m) for m in state.models]
        out = {"data": data, "has_more": False, "first_id": state.models[0] if data else None,
               "last_id": state.models[-1] if data else None}
    else:
        out = {"object": "list", "data": [_openai_model(m) for m in state.models]}
    return web.Response(body=orjson.dumps(out), content_type=JSON, headers=headers)


async def not_found(request: web.Request) -> web.Response:
    """Any other path: recorded, then 404 in the error shape of the API the request looks like."""
    state = request.app[STATE]
    rid = f"req_fake_{next(state.ids):06d}"
    _record(request, state, None)
    is_anthropic = "anthropic-version" in request.headers or "x-api-key" in request.headers
    wire = wire_anthropic if is_anthropic else wire_openai
    return _error(wire, 404, rid, f"Not found: {request.method} {request.path}")


async def fake_requests(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if request.method == "DELETE":
        state.requests.clear()
        return web.Response(body=b"[]", content_type=JSON)
    return web.Response(body=orjson.dumps(list(state.requests)), content_type=JSON)


async def fake_stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.Response(body=orjson.dumps({
        "total": sum(state.stats.values()), "by_path": dict(state.stats),
        "cpu_seconds": time.process_time(),  # whole process (includes pytest when run in a thread)
        "loop_thread_cpu_seconds": time.thread_time(),  # this server's event-loop thread only
        "uptime_seconds": time.monotonic() - state.started,
    }), content_type=JSON)


async def fake_reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return web.Response(body=b"{}", content_type=JSON)


async def fake_health(request: web.Request) -> web.Response:
    return web.Response(body=b'{"ok":true}', content_type=JSON)


def create_app(state: State | None = None) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE] = state or State()
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/responses", responses)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/models/{model_id}", models)
    app.router.add_get("/_fake/requests", fake_requests)
    app.router.add_delete("/_fake/requests", fake_requests)
    app.router.add_get("/_fake/stats", fake_stats)
    app.router.add_post("/_fake/reset", fake_reset)
    app.router.add_get("/_fake/health", fake_health)
    wire_dialects.register(app.router)  # vendor dialects under their own prefixes
    wire_oauth.register(app)  # Anthropic OAuth: token endpoint and a Bearer-checking messages endpoint
    wire_batches.register(app)  # native batch APIs of both kinds
    wire_bedrock.register(app)  # Claude on AWS Bedrock: SigV4, the model in the path, event-stream framing
    wire_vertex.register(app)  # Claude on Vertex AI: service-account tokens, rawPredict / streamRawPredict
    wire_reports.register(app)  # the vendors' usage and cost reports (admin keys), from what was served
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


async def start_server(state: State, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, int]:
    """Start on the running loop; -> (runner, bound port). Stop with `await runner.cleanup()`."""
    # access_log=None: no per-request logging. handler_cancellation: a client that hangs up cancels
    # the handler, so FAIL: timeout / hang_midstream don't keep sleeping.
    runner = web.AppRunner(create_app(state), access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    return runner, runner.addresses[0][1]


def new_event_loop() -> asyncio.AbstractEventLoop:
    if os.environ.get("FAKE_UPSTREAM_NO_UVLOOP") != "1":
        try:
            import uvloop

            return uvloop.new_event_loop()
        except ImportError:
            pass
    return asyncio.new_event_loop()


class _Base:
    host: str
    port: int

    @property
    def url(self) -> str:
        """Anthropic SDK base_url (the SDK appends /v1/messages)."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_url(self) -> str:
        """OpenAI SDK base_url (the SDK appends /chat/completions)."""
        return f"http://{self.host}:{self.port}/v1"

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class FakeUpstream(_Base):
    """In-process server on its own event loop in a daemon thread (for pytest fixtures).

        fake = FakeUpstream(chunks=20, key="sk-fake"); port = fake.start(); ...; fake.stop()
        with FakeUpstream() as fake: anthropic.Anthropic(base_url=fake.url, api_key="sk-fake")

    `fake.state` gives direct access to .requests (deque of dicts), .stats, .reset().
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, chunks: int = DEFAULT_CHUNKS,
                 key: str = DEFAULT_KEY, models=DEFAULT_MODELS, coalesce: bool = False,
                 prompt_cache: bool = False) -> None:
        self.host, self.port = host, port
        self.state = State(chunks=chunks, key=key, models=models, coalesce=coalesce, prompt_cache=prompt_cache)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> int:
        ready = threading.Event()
        error: list[BaseException] = []

        def run() -> None:
            loop = new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                runner, self.port = loop.run_until_complete(start_server(self.state, self.host, self.port))
            except BaseException as e:  # reported to the starting thread
                error.append(e)
                ready.set()
                loop.close()
                return
            self._loop = loop
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(runner.cleanup())
                loop.close()

        self._thread = threading.Thread(target=run, name="fake-upstream", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("fake upstream did not start")
        if error:
            raise error[0]
        return self.port

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = self._thread = None

    @property
    def requests(self) -> list[dict]:
        return list(self.state.requests)


class FakeUpstreamProcess(_Base):
    """The same server as a subprocess (for the benchmark): `python -m tests.fakes.upstream`.

        proc = FakeUpstreamProcess(chunks=20); port = proc.start(); ...; proc.stop()
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, chunks: int = DEFAULT_CHUNKS,
                 key: str = DEFAULT_KEY, coalesce: bool = False, python: str | None = None, extra_args=(),
                 cpu: int | None = None) -> None:
        """cpu: pin the subprocess to that core with taskset (Linux)."""
        self.host, self.port = host, port
        self.args = [python or sys.executable, "-m", "tests.fakes.upstream", "--host", host, "--port", str(port),
                     "--chunks", str(chunks), "--key", key, *(["--coalesce"] if coalesce else []), *extra_args]
        if cpu is not None:
            self.args = ["taskset", "-c", str(cpu), *self.args]
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 15.0) -> int:
        self.proc = subprocess.Popen(self.args, cwd=REPO_ROOT, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"fake upstream subprocess did not start: {line!r}")
            if select.select([self.proc.stdout], [], [], left)[0]:
                b = os.read(self.proc.stdout.fileno(), 1)
                if not b:
                    continue
                line += b
        text = line.decode().strip()
        if not text.startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(f"unexpected output from fake upstream: {text!r}")
        self.port = int(text.rsplit(":", 1)[1])
        return self.port

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None
