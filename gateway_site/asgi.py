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
Websockets go to Channels.
"""

import asyncio
import gc
import os

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

from gateway_site.routing import websocket_urlpatterns  # noqa: E402

# The paths served without middleware: the model API and the probes. Everything else (the admin, its static
# files, /docs, /openapi.json and whatever is added later) goes through settings.MIDDLEWARE as usual.
BARE_PREFIXES = ("/v1/", "/chat/completions", "/models", "/api/event_logging/")
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

    async def handle(self, scope, receive, send):
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await self.send_response(error_response, send)
            error_response.close()
            return

        async def process_request():
            response = await self.run_get_response(request)
            if not response.streaming and not response.has_header("Content-Length"):
                response["Content-Length"] = str(len(response.content))  # CommonMiddleware's job, skipped here
            for name, value in _security_headers(scope):  # SecurityMiddleware's and XFrameOptions' job
                response.headers.setdefault(name, value)
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
    never runs there: drain the ledger here instead. Daphne has no lifespan and exits normally (atexit)."""
    from proxy.upstreams import http as http_client
    from usage import ledger

    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            ledger.start()  # replays the ledger spools of processes that died (daphne: gateway_site/server.py)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await asyncio.to_thread(ledger.stop)
            await http_client.close_all()
            await send({"type": "lifespan.shutdown.complete"})
            return


# No broker, no beat: the web process runs the nightly rollup itself (usage/scheduler.py says when).
from usage import scheduler as usage_scheduler  # noqa: E402

usage_scheduler.start()

application = ProtocolTypeRouter(
    {
        # The admin's session identifies the user (usage/consumers.py checks it); the Origin must be one of
        # ALLOWED_HOSTS, so another site's page cannot open a socket with a staff member's cookie.
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        "http": http,
        "lifespan": lifespan,
    }
)

# Everything loaded so far (Django, the URLconf, the formats) lives as long as the process: moving it out of the
# collector's generations makes full collections cheaper. Measured: p99 at c=8 from ~95 ms to ~50 ms.
gc.collect()
gc.freeze()
