"""ASGI entry point.

Two Django handlers share one process: the model API and the probes (BARE_PREFIXES, BARE_PATHS) run through a
lean handler; everything else (the admin, static files, docs) runs through settings.MIDDLEWARE as usual. Measured on the benchmark, the
stock handler spends most of the gateway's CPU on threads, not on the request:
- each sync middleware runs in a worker thread (two hops per middleware per request); the API needs none of
  sessions, CSRF, auth or messages (its keys are checked by proxy.auth); the security headers that
  SecurityMiddleware and XFrameOptionsMiddleware would add are added by the lean handler itself;
- every request gets a ThreadSensitiveContext, i.e. a new executor thread, used for the request_started
  signal and response.close() (two more hops). The API does no ORM work on the event-loop thread (the few
  queries it makes run in executor threads of their own), so those receivers — reset_queries and
  close_old_connections — find no connection here and can run inline.
The lean handler also guards the API (issue 14): it authenticates from the headers before reading a byte of the
body (`_gate`: 401, 429 for a throttled address, 413 for a Content-Length over the path's limit,
proxy.errors.body_limit), reads the body with the limit enforced as it arrives (a chunked body gets its 413 too;
an upload is spooled to disk rather than held in memory), and turns any error that is not
already JSON (405, Django's 400s) into the caller's format (`_api_json`). Under daphne, whose twisted server
buffers bodies before the app runs, gateway_site/daphne_guard.py does the header checks as the headers arrive.
Websockets go to Channels: the Responses API's (/v1/responses, proxy/ws.py: key auth from the upgrade's headers)
directly, the admin's live feed behind its session and Origin checks.
"""

import asyncio
import gc
import io
import os
import sys
import tempfile
from http import HTTPStatus

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")

import django  # noqa: E402

django.setup(set_prefix=False)

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.core import signals  # noqa: E402
from django.core.exceptions import RequestAborted  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402
from django.core.handlers.exception import convert_exception_to_response  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from django.conf import settings  # noqa: E402

from gateway_site.routing import websocket_urlpatterns  # noqa: E402
from proxy import api as proxy_api  # noqa: E402
from proxy import auth  # noqa: E402
from proxy import ws as proxy_ws  # noqa: E402
from proxy.errors import UPLOAD_PATHS, GatewayError, RequestTooLarge, unexpected  # noqa: E402
from proxy.errors import body_limit, check_length, too_large  # noqa: E402

# The paths served without middleware: the model API and the probes. Everything else (the admin, its static
# files, /docs, /openapi.json and whatever is added later) goes through settings.MIDDLEWARE as usual.
BARE_PREFIXES = proxy_api.PATH_PREFIXES
BARE_PATHS = frozenset({"/", "/health", "/ready", "/metrics"})


class BareASGIHandler(ASGIHandler):
    """Django's ASGI handler without middleware and without a thread per request (see the module docstring).
    `handle` follows ASGIHandler.handle (Django 5.2) step for step, minus the thread hops."""

    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._get_response_async)

    async def __call__(self, scope, receive, send):
        await self.handle(scope, receive, send)

    # path -> ResolverMatch of a route without parameters, for the resolver it came from (see resolve_request)
    _resolved: tuple = (None, {})
    RESOLVED_MAX = 64

    def resolve_request(self, request):
        """Django's, but a path without parameters is resolved once: the model API's few paths come on every
        request, and walking the URLconf to them (past the admin, the management API and the batch routes) costs
        ~14 µs each time. The same resolver gives the same match for the same path; a new URLconf (tests,
        clear_url_caches) is a new resolver and starts a new memo. Misses (404) and routes with parameters are
        not kept, and at most RESOLVED_MAX paths are, so no client can grow it."""
        if hasattr(request, "urlconf"):
            return super().resolve_request(request)
        resolver = get_resolver()
        owner, memo = self._resolved
        if owner is not resolver:
            owner, memo = resolver, {}
            BareASGIHandler._resolved = (owner, memo)
        path = request.path_info
        match = memo.get(path)
        if match is None:
            match = resolver.resolve(path)
            if not match.args and not match.kwargs and len(memo) < self.RESOLVED_MAX:
                memo[path] = match
        request.resolver_match = match
        return match

    async def handle(self, scope, receive, send):
        try:
            refusal = await _gate(scope)  # from the headers alone: nothing of the body is read for a refused request
        except Exception as exc:  # the key store unreachable (database down): an error in the caller's format
            refusal = _error(scope, unexpected(exc, "checking an API key"))
        if refusal is not None:
            await self.send_response(_sized(_secured(scope, refusal)), send)
            return
        try:
            body_file = await self.read_body(receive, scope["path"])
        except RequestAborted:
            return
        except RequestTooLarge as err:
            await self.send_response(_sized(_secured(scope, _error(scope, err))), send)
            return
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            error_response = _sized(_secured(scope, _api_json(scope, error_response)))
            await self.send_response(error_response, send)
            error_response.close()
            return

        async def process_request():
            response = _sized(_secured(scope, _api_json(scope, await self.run_get_response(request))))
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass  # the client disconnected while we were sending
            return response

        # Cancel the view when the client disconnects (the core then records the request as cancelled).
        listener = asyncio.create_task(self.listen_for_disconnect(receive))
        processor = asyncio.create_task(process_request())
        await asyncio.wait((listener, processor), return_when=asyncio.FIRST_COMPLETED)
        for task in (listener, processor):
            if not task.done():
                task.cancel()
            try:
                await task
            except (asyncio.CancelledError, RequestAborted):
                pass
        if processor.cancelled():
            signals.request_finished.send(sender=self.__class__)
        else:
            processor.result().close()
        body_file.close()


    async def read_body(self, receive, path=""):
        """The body, refused with RequestTooLarge as soon as it passes the path's limit (errors.body_limit; a chunked
        body has no Content-Length to check up front). The model API parses every body whole, so it is kept in
        memory; an upload (errors.UPLOAD_PATHS) is spooled instead (_spooled_body)."""
        limit = body_limit(path)
        if path in UPLOAD_PATHS:
            return await _spooled_body(receive, limit)
        chunks = [chunk async for chunk in _chunks(receive, limit)]
        return io.BytesIO(chunks[0] if len(chunks) == 1 else b"".join(chunks))


async def _chunks(receive, limit: int):
    """The body's chunks as they arrive; RequestTooLarge as soon as they pass `limit`, RequestAborted when the
    client goes away."""
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestAborted()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            yield chunk
        if not message.get("more_body", False):
            return


async def _spooled_body(receive, limit: int):
    """An upload's body (up to GATEWAY_MAX_UPLOAD_BYTES), kept as Django's own ASGIHandler.read_body keeps it: in
    memory up to FILE_UPLOAD_MAX_MEMORY_SIZE, then in a temporary file (written on the loop, as Django does: the
    writes land in the page cache). Never held whole in memory, nor twice: the multipart parser reads it from this
    file and streams the file part to a temporary file of its own."""
    body_file = tempfile.SpooledTemporaryFile(
        max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b", dir=settings.FILE_UPLOAD_TEMP_DIR
    )
    try:
        async for chunk in _chunks(receive, limit):
            body_file.write(chunk)
    except BaseException:
        body_file.close()
        raise
    body_file.seek(0)
    return body_file


# API paths that need no key: the probes, Claude Code's telemetry sink, and Bedrock's inference-profile list
# (proxy/api.py checks a key there only when one is sent).
OPEN_PREFIXES = ("/api/event_logging/", "/bedrock/inference-profiles")


def needs_key(path: str) -> bool:
    return path.startswith(BARE_PREFIXES) and not path.startswith(OPEN_PREFIXES)


async def _gate(scope):
    """None to go on reading the body, or the response that refuses the request: no or a bad key (401), a
    throttled address (429), a Content-Length over the limit (413). A good key is left in the scope for
    proxy.auth.GatewayKey, which then does not check it again."""
    if not needs_key(scope["path"]):
        return None
    headers = _headers(scope)
    client = scope.get("client")
    try:
        scope[auth.SCOPE_KEY] = await auth.authenticate_request(headers, client[0] if client else None)
        check_length(headers.get("content-length"), scope["path"])
    except GatewayError as err:
        return _error(scope, err)
    return None


def _sized(response):
    """A complete answer carries its Content-Length (CommonMiddleware's job, skipped here): without it a server
    such as uvicorn sends it chunked, and a refusal sent before the body was read must be delimited so that the
    client reads all of it before the connection closes."""
    if not response.streaming and not response.has_header("Content-Length"):
        response["Content-Length"] = str(len(response.content))
    return response


def _headers(scope) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


def _error(scope, err):
    return proxy_api.error_response(scope["path"], _headers(scope), err)


API_ERROR_KINDS = {400: "invalid_request", 401: "authentication", 403: "permission", 404: "not_found",
                   413: "request_too_large"}  # fmt: skip


def _api_json(scope, response):
    """Every error under the API paths is JSON in the caller's format: Django's and ninja's own answers (405,
    a 400 for a malformed request, ...) are HTML or bare JSON, and are rewritten here."""
    if response.status_code < 400 or response.streaming or scope["path"] in BARE_PATHS:
        return response
    if response.get("Content-Type", "").startswith("application/json"):
        return response
    status = response.status_code
    if status == 405:
        message = f"method {scope['method']} is not allowed on {scope['path']}"
        err = GatewayError(message, kind="invalid_request", status=405)
        err.headers = {"Allow": response["Allow"]} if response.has_header("Allow") else {}
    else:
        message = f"{status} {HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else 'error'}"
        err = GatewayError(message, kind=API_ERROR_KINDS.get(status, "api_error"), status=status)
    response.close()
    rendered = _error(scope, err)
    rendered.status_code = status  # the formats know no 405: the body says invalid request, the status stays
    return rendered


def _secured(scope, response):
    """Every answer under the API paths carries the headers SecurityMiddleware and XFrameOptions would add."""
    for name, value in _security_headers(scope):
        response.headers.setdefault(name, value)
    return response


def _security_headers(scope) -> list[tuple[str, str]]:
    """What SecurityMiddleware and XFrameOptionsMiddleware would add, computed once from the settings."""
    global _SECURITY
    if _SECURITY is None:
        from django.conf import settings

        _SECURITY = [("X-Frame-Options", settings.X_FRAME_OPTIONS)]
        if settings.SECURE_CONTENT_TYPE_NOSNIFF:
            _SECURITY.append(("X-Content-Type-Options", "nosniff"))
        if settings.SECURE_REFERRER_POLICY:
            _SECURITY.append(("Referrer-Policy", settings.SECURE_REFERRER_POLICY))
        if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
            _SECURITY.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
        if settings.SECURE_HSTS_SECONDS:
            hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
            _SECURITY_TLS.append(("Strict-Transport-Security", hsts))
    if _SECURITY_TLS and scope.get("scheme") == "https":
        return _SECURITY + _SECURITY_TLS
    return _SECURITY


_SECURITY: list | None = None
_SECURITY_TLS: list = []
admin_http = ASGIHandler()
api_http = BareASGIHandler()


async def http(scope, receive, send):
    path = scope["path"]
    handler = api_http if path in BARE_PATHS or path.startswith(BARE_PREFIXES) else admin_http
    await handler(scope, receive, send)


async def lifespan(scope, receive, send):
    """Servers that speak ASGI lifespan (uvicorn) end the process by re-raising SIGTERM after shutdown, so atexit
    never runs there: drain the ledger here instead. Daphne has no lifespan: gateway_site/server.py's GracefulServer
    starts and drains the ledger there, whether daphne runs through bin/serve or as the plain daphne command."""
    from proxy.upstreams import http as http_client
    from usage import ledger, tracing

    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            ledger.start()  # replays the ledger spools of processes that died (daphne: gateway_site/server.py)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await asyncio.to_thread(ledger.stop)
            await asyncio.to_thread(tracing.shutdown)  # the spans still queued are exported
            await http_client.close_all()
            await send({"type": "lifespan.shutdown.complete"})
            return


if "daphne.http_protocol" in sys.modules:  # served by daphne: refuse at the headers, before twisted reads a body
    from gateway_site import daphne_guard, server

    daphne_guard.install(needs_key, _security_headers)
    server.make_daphne_graceful()  # the plain daphne command: replay at start, drain on SIGTERM (as bin/serve)

# No broker, no beat: the web process runs the nightly rollup itself (usage/scheduler.py says when).
from usage import scheduler as usage_scheduler  # noqa: E402

usage_scheduler.start()

# OpenTelemetry traces, only when OTEL_* says where to send them (usage/tracing.py); flushed by the drain.
from usage import tracing  # noqa: E402

tracing.setup()

# The admin's session identifies the user (usage/consumers.py checks it); the Origin must be one of ALLOWED_HOSTS,
# so another site's page cannot open a socket with a staff member's cookie.
admin_websocket = AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
# The model API's socket is authenticated by its key, like its HTTP requests: no session, no cookie, and clients
# (Codex, the openai SDK) send no Origin.
WS_API_PATHS = frozenset({"/v1/responses", "/responses"})
api_websocket = proxy_ws.ResponsesSocket.as_asgi()


async def websocket(scope, receive, send):
    handler = api_websocket if scope["path"] in WS_API_PATHS else admin_websocket
    await handler(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "websocket": websocket,
        "http": http,
        "lifespan": lifespan,
    }
)

# Everything loaded so far (Django, the URLconf, the formats) lives as long as the process: moving it out of the
# collector's generations makes full collections cheaper. Measured: p99 at c=8 from ~95 ms to ~50 ms.
gc.collect()
gc.freeze()
