"""ASGI entry point.

Two Django handlers share one process: the admin (and its static files) runs through settings.MIDDLEWARE as
usual; everything else — the API, probes, metrics — runs through a handler with no middleware at all. Django
runs each sync middleware in a worker thread under ASGI (two thread hops per middleware per request), and the
API needs none of sessions, CSRF, auth or messages: its keys are checked by the pipeline itself.
Websockets go to Channels.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")

import django  # noqa: E402

django.setup(set_prefix=False)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402
from django.core.handlers.exception import convert_exception_to_response  # noqa: E402

from gateway_site.routing import websocket_urlpatterns  # noqa: E402

MIDDLEWARE_PATHS = ("/admin/", "/static/")


class BareASGIHandler(ASGIHandler):
    """Django's ASGI handler without any middleware (not even view middleware)."""

    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._get_response_async)


admin_http = ASGIHandler()
api_http = BareASGIHandler()


async def http(scope, receive, send):
    handler = admin_http if scope["path"].startswith(MIDDLEWARE_PATHS) else api_http
    await handler(scope, receive, send)


application = ProtocolTypeRouter({"http": http, "websocket": URLRouter(websocket_urlpatterns)})
