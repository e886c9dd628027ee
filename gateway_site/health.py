"""Probes and operational endpoints that sit outside the API: liveness, readiness, metrics, JSON 404/500."""

import hmac
from ipaddress import ip_address

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django_prometheus.exports import ExportToDjangoView


async def root(request):
    # Claude Code sends HEAD / before every run; answer without touching anything.
    if request.method in ("HEAD", "GET"):
        return JsonResponse({"service": "gatehouse", "status": "ok"})
    return JsonResponse({"error": "method not allowed"}, status=405)


async def health(request):
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False
    finally:
        connection.close()


async def ready(request):
    """Ready = can serve: the database answers. Redis is reported, not required: while it is down the gateway
    keeps serving with per-process limits and breakers (proxy/policies/store.py), so it stays in rotation.
    The ledger likewise: while its rows cannot be written (a locked table, a failing database) they wait in
    the spool (usage/ledger.py) and requests are still served, so it is "degraded", not a 503."""
    from proxy.policies.store import redis_status
    from usage import ledger

    database = await sync_to_async(_database_ok, thread_sensitive=False)()
    book = ledger.status()
    checks = {"database": database, "redis": redis_status(), "ledger": book["status"], "ledger_backlog": book["backlog"]}
    healthy = checks["redis"] != "degraded" and checks["ledger"] != "degraded"
    _dependency_gauges(checks)
    status = "ok" if database and healthy else ("degraded" if database else "unavailable")
    return JsonResponse({"status": status, "checks": checks}, status=200 if database else 503)


def _dependency_gauges(checks: dict) -> None:
    """The same verdicts as gateway_dependency_up{dependency}: alerting need not parse /ready's body."""
    from usage.metrics import dependency_up

    dependency_up.labels("database").set(1 if checks["database"] else 0)
    dependency_up.labels("ledger").set(0 if checks["ledger"] == "degraded" else 1)
    if checks["redis"] != "off":
        dependency_up.labels("redis").set(0 if checks["redis"] == "degraded" else 1)


PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def _from_loopback(request) -> bool:
    """The client is this host (127.0.0.0/8, ::1). A request that names a forwarded client is not: it came through
    a proxy (whose own address may be loopback), or claims to (daphne --proxy-headers believes X-Forwarded-For)."""
    if any(header in request.headers for header in PROXY_HEADERS):
        return False
    try:
        address = ip_address(request.META.get("REMOTE_ADDR") or "")
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


def metrics(request):
    """Per-project traffic: with METRICS_TOKEN set, only for its bearer; without it, only for this host."""
    if settings.METRICS_TOKEN:
        supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(supplied.encode(), settings.METRICS_TOKEN.encode()):
            return HttpResponse("metrics token required\n", status=401, content_type="text/plain")
    elif not _from_loopback(request):
        return HttpResponse(
            "metrics are served to loopback clients only; set METRICS_TOKEN to scrape from elsewhere\n",
            status=403,
            content_type="text/plain",
        )
    return ExportToDjangoView(request)


def not_found(request, exception=None):
    message = f"No route for {request.method} {request.path}"
    if _api_path(request.path):
        from proxy.api import error_response
        from proxy.errors import NotFound

        return error_response(request.path, request.headers, NotFound(message))  # in the caller's format
    return JsonResponse({"error": {"message": message, "type": "not_found"}}, status=404)


def server_error(request):
    if _api_path(request.path):
        from proxy.api import error_response
        from proxy.errors import GatewayError

        return error_response(request.path, request.headers, GatewayError("internal gateway error"))
    return JsonResponse({"error": {"message": "Internal error", "type": "api_error"}}, status=500)


def _api_path(path: str) -> bool:
    from proxy.api import PATH_PREFIXES

    return path.startswith(PATH_PREFIXES)
