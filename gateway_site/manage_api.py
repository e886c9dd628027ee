"""The management API, for scripts: a NinjaAPI of its own under /manage/v1/ (docs at /manage/v1/docs).

Separate from the model API (gateway_site/api.py) because everything differs: the credential (a management
token, never a gateway key), the error shape, the rate limit. Its routers live with their data:

    accounts/manage_api.py   projects, client API keys, providers and accounts, routes
    usage/manage_api.py      prices; usage, costs, errors and budget status
    proxy/manage_api.py      live status: accounts' health, breakers, requests in flight

Errors, whatever raised them, leave as {"error": {"type", "message"[, "problems"]}}. Calls are limited per token
(GATEWAY_MANAGEMENT_RATE, django-ninja's throttle on Django's cache: Redis when REDIS_URL is set, so the limit
holds across processes).
"""

import logging

from django.conf import settings
from django.http import Http404, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.throttling import AuthRateThrottle

from accounts.manage_common import ManagementError, TokenAuth

log = logging.getLogger(__name__)

manage_api = NinjaAPI(
    title="Gatehouse management API",
    version="1",
    description="Projects, keys, providers, routes, prices, usage and status, for automation. "
    "Authenticate with a management token (created in the admin): `Authorization: Bearer ghm_…`. "
    "A `read` token may only GET.",
    auth=TokenAuth(),
    throttle=[AuthRateThrottle(settings.GATEWAY_MANAGEMENT_RATE)],
    docs_url="/docs",
    openapi_url="/openapi.json",
    urls_namespace="manage",
)
manage_api.add_router("", "accounts.manage_api.router")
manage_api.add_router("", "usage.manage_api.router")
manage_api.add_router("", "proxy.manage_api.router")


def _error(request, status: int, type_: str, message: str, problems=None, headers=None):
    response = JsonResponse(ManagementError(status, type_, message, problems).body(), status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


@manage_api.exception_handler(ManagementError)
def management_error(request, exc: ManagementError):
    return _error(request, exc.status, exc.type, exc.message, exc.problems)


@manage_api.exception_handler(ValidationError)
def validation_error(request, exc: ValidationError):
    problems = [f"{'.'.join(str(p) for p in e.get('loc', [])[1:]) or 'request'}: {e.get('msg')}" for e in exc.errors]
    return _error(request, 400, "invalid_request_error", "invalid parameters", problems)


@manage_api.exception_handler(AuthenticationError)
def authentication_error(request, exc):
    return _error(request, 401, "authentication_error", "missing or invalid management token")


@manage_api.exception_handler(HttpError)
def http_error(request, exc: HttpError):
    if exc.status_code == 429:
        wait = getattr(exc, "wait", None)
        return _error(request, 429, "rate_limit_error", f"too many management calls: at most {settings.GATEWAY_MANAGEMENT_RATE}",
                      headers={"retry-after": str(int(wait) + 1)} if wait else None)  # fmt: skip
    return _error(request, exc.status_code, "invalid_request_error", str(exc))


@manage_api.exception_handler(Http404)
def not_found(request, exc):
    return _error(request, 404, "not_found", "not found")


@manage_api.exception_handler(Exception)
def unexpected(request, exc):
    log.exception("management API error on %s %s", request.method, request.path)
    return _error(request, 500, "api_error", "internal error; the server log has the details")
