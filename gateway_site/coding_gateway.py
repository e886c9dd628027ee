"""The Coding Gateway's own endpoints, so that its users' scripts keep working after the switch
(docs/coding-gateway-api.md has the shapes):

    GET  /admin/metrics               Prometheus text (what /metrics serves)
    GET  /admin/usage                 tokens, cost and requests per model        } usage/selectors.py, the reads
    GET  /admin/usage/daily           the same per day and model                 } behind the management API's
    GET  /admin/costs                 cost today, this week, this month, ever    } numbers and the finance
    GET  /admin/errors                the latest failed requests                 } report
    GET  /admin/errors/stats          failures by kind and provider              } (usage/manage_api.py)
    GET|POST /admin/projects, PUT|DELETE /admin/projects/{id}: accounts/manage_api.py's project code
    POST /chat                        one chat turn through proxy.core.run, answered as {cached, model, text, usage}
    (GET /models is the model API's own, proxy/api.py.)

The /admin/ paths are the Django admin's too (/admin/usage/ is the `usage` app's page). One rule, `is_api_call`,
decides who answers: a request with an API credential (X-API-Key, api-key or Authorization: Bearer), or one that
asks for JSON (Accept: application/json) and has no session cookie, gets the JSON endpoint; anything else (a
browser) gets the Django admin, exactly as it would without these routes (`django_admin`). The credential is
ADMIN_API_KEY (setting GATEWAY_ADMIN_API_KEY) or a management token (accounts/api_tokens.py; a read token may only
GET). Failures are {"detail": message}, the shape the Coding Gateway (FastAPI) answered and its clients read,
with its statuses: 403 for a missing or wrong credential, 404, 405, 409, 422.
"""

import functools
import hmac
from datetime import date, timedelta
from decimal import Decimal

import orjson
from django.conf import settings
from django.contrib import admin
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.urls import URLResolver, path
from django.urls.resolvers import RegexPattern
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.csrf import csrf_exempt
from django_prometheus.exports import ExportToDjangoView
from ninja import Router

from accounts import api_tokens, audit
from accounts import manage_api as projects_api
from accounts.manage_common import READ_METHODS, ManagementError, config_item_apply, json_body
from accounts.models import Project
from proxy import api as proxy_api
from proxy import core
from proxy.errors import InvalidRequest
from usage import manage_api as numbers_api
from usage import selectors

# --- which request is whose ---------------------------------------------------------------------------------


def is_api_call(request: HttpRequest) -> bool:
    """The JSON endpoint's, not the Django admin's. Browsers send none of these credentials on their own (HTTP
    Basic auth in front of the admin is `Authorization: Basic`, not Bearer), and a page's fetch has the session
    cookie."""
    headers = request.headers
    if headers.get("x-api-key") or headers.get("api-key") or headers.get("authorization", "")[:7].lower() == "bearer ":
        return True
    return "application/json" in headers.get("accept", "") and settings.SESSION_COOKIE_NAME not in request.COOKIES


@functools.cache
def _admin_urls() -> URLResolver:
    return URLResolver(RegexPattern(r"^/"), [path("admin/", admin.site.urls)])


def django_admin(request: HttpRequest):
    """What the Django admin answers for this path (its page, its login redirect, its slash redirect, its 404)."""
    match = _admin_urls().resolve(request.path_info)
    request.resolver_match = match
    return match.func(request, *match.args, **match.kwargs)


class Refused(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def _credential(request: HttpRequest) -> str:
    """Where the Coding Gateway read its keys: Authorization: Bearer, X-API-Key, api-key."""
    authorization = request.headers.get("authorization", "")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return (request.headers.get("x-api-key") or request.headers.get("api-key") or "").strip()


def _actor(request: HttpRequest) -> str:
    """Who calls (for the audit trail), or Refused."""
    secret, admin_key = _credential(request), settings.GATEWAY_ADMIN_API_KEY
    if secret and admin_key and hmac.compare_digest(secret.encode(), admin_key.encode()):
        return "ADMIN_API_KEY"
    token = api_tokens.token_find(secret) if secret else None
    if token is None:
        raise Refused(403, "Admin API key required")
    if token.scope != "write" and request.method not in READ_METHODS:
        raise Refused(403, f"the management token {token.name!r} has the read scope; this needs write")
    return f"token:{token.name}"


def endpoint(**methods):
    """A URL's view: the Django admin for a browser (`is_api_call`), else the method's handler, called with the
    request, the caller's name and the URL's parameters; its dict is the JSON answer (or an HttpResponse)."""

    @csrf_exempt  # the admin's own views keep their CSRF protection; a JSON call carries no ambient credential
    def view(request: HttpRequest, **params):
        if not is_api_call(request):
            return django_admin(request)
        try:
            handler = methods.get(request.method)
            if handler is None:
                raise Refused(405, "Method Not Allowed")
            answer = handler(request, _actor(request), **params)
        except Refused as refusal:
            return _detail(refusal.status, refusal.detail)
        except ManagementError as err:
            return _detail(err.status, "; ".join([err.message, *(err.problems or [])]))
        return answer if not isinstance(answer, dict) else JsonResponse(answer)

    return view


def _detail(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status)


# --- query parameters ------------------------------------------------------------------------------------------


def _int(request, name: str, default: int, low: int, high: int) -> int:
    raw = request.GET.get(name)
    try:
        value = default if raw in (None, "") else int(raw)
    except ValueError:
        raise Refused(422, f"{name}: expected an integer") from None
    if not low <= value <= high:
        raise Refused(422, f"{name}: between {low} and {high}")
    return value


def _day(request, name: str) -> date | None:
    """A date, or the date of an ISO date-time (the Coding Gateway took date-times); reads are per day."""
    raw = request.GET.get(name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        raise Refused(422, f"{name}: expected a date like 2026-11-01") from None


def _project_filter(request) -> tuple[dict, object]:
    """(usage filters, the project_id as given): the Coding Gateway's integer id, or a Gatehouse slug."""
    given = request.GET.get("project_id") or None
    if given is None:
        return {}, None
    project = _project(given)
    return {"project": project.id}, int(given) if given.isdigit() else given


def _project(given: str) -> Project:
    project = Project.objects.filter(**({"id": int(given)} if given.isdigit() else {"slug": given})).first()
    if project is None:
        raise Refused(404, "Project not found")
    return project


def _since_start(today: date) -> date:
    return selectors.usage_first_day() or today


def _totals(cells, *dimensions) -> dict[tuple, selectors.Counters]:
    """Cells summed per the named Cell attributes (a combination may come twice: from rollups and raw rows)."""
    totals: dict[tuple, selectors.Counters] = {}
    for cell in cells:
        total = totals.setdefault(tuple(getattr(cell, d) for d in dimensions), selectors.Counters())
        for name in selectors.COUNTERS:
            setattr(total, name, getattr(total, name) + getattr(cell, name))
        total.cost += cell.cost
    return totals


# --- numbers ---------------------------------------------------------------------------------------------------

ERRORS_DAYS = 31  # /admin/errors lists failures of the last month (raw ledger rows, newest first)


def metrics(request, actor):
    return ExportToDjangoView(request)


def usage(request, actor):
    filters, project_id = _project_filter(request)
    today = timezone.localdate()
    last = _day(request, "end") or today
    first = _day(request, "start") or _since_start(today)
    if first > last:
        raise Refused(422, "start: on or before end")
    per_model = _totals(selectors.usage_cells(first, last, filters, by=("model",)).cells, "model")
    rows = [{"model": model, "input_tokens": t.input_tokens, "output_tokens": t.output_tokens,
             "cost_usd": float(t.cost), "request_count": t.requests}
            for (model,), t in sorted(per_model.items(), key=lambda item: str(item[0][0]))]  # fmt: skip
    return {"usage": rows, "project_id": project_id, "start": first.isoformat(), "end": last.isoformat()}


def usage_daily(request, actor):
    filters, project_id = _project_filter(request)
    days = _int(request, "days", 7, 1, 90)
    today = timezone.localdate()
    cells = selectors.usage_cells(today - timedelta(days=days), today, filters, by=("day", "model")).cells
    per_day = sorted(_totals(cells, "day", "model").items(), key=lambda i: (-i[0][0].toordinal(), str(i[0][1])))
    rows = [{"date": day.isoformat(), "model": model, "input_tokens": t.input_tokens, "output_tokens": t.output_tokens,
             "cost_usd": float(t.cost), "requests": t.requests} for (day, model), t in per_day]  # fmt: skip
    return {"daily": rows, "days": days, "project_id": project_id}


def costs(request, actor):
    filters, project_id = _project_filter(request)
    today = timezone.localdate()
    starts = {"today": today, "this_week": today - timedelta(days=today.weekday()), "this_month": today.replace(day=1)}
    starts["all_time"] = min([_since_start(today), *starts.values()])
    per_day = _totals(selectors.usage_cells(starts["all_time"], today, filters, by=("day",)).cells, "day")
    totals = {name: sum((t.cost for (day,), t in per_day.items() if day >= start), Decimal(0))
              for name, start in starts.items()}  # fmt: skip
    return {"costs": {name: float(total) for name, total in totals.items()}, "project_id": project_id}


def errors(request, actor):
    count = _int(request, "count", 100, 1, 1000)
    today = timezone.localdate()
    rows = selectors.error_rows(today - timedelta(days=ERRORS_DAYS), today).order_by("-created_at", "-id")[:count]
    listed = [numbers_api.error_out(row) for row in rows]
    return {"errors": listed, "count": len(listed)}


def error_stats(request, actor):
    """The management API's error statistics over the days the last `hours` touch."""
    hours = _int(request, "hours", 24, 1, 168)
    first = timezone.localdate(timezone.now() - timedelta(hours=hours))
    stats = numbers_api.error_stats(request, start=first.isoformat(), end=timezone.localdate().isoformat())
    return {"hours": hours, **stats}


# --- projects --------------------------------------------------------------------------------------------------

# What `config` may carry: the project fields of the management API and config file besides the three the Coding
# Gateway named itself (name, rate_limit_rpm -> rpm, is_active -> active).
CONFIG_FIELDS = tuple(f for f in projects_api.PROJECT_EDITABLE if f not in ("name", "rpm", "active"))
SEED_DEFAULT_RPM = 60  # the Coding Gateway's default for a new project


def project_out(project: Project, total: selectors.Counters | None = None) -> dict:
    out = projects_api.project_out(project)
    return {"id": out["id"], "slug": out["slug"], "name": out["name"], "rate_limit_rpm": out["rpm"],
            "is_active": out["active"], "created_at": out["created_at"],
            "total_cost": float(total.cost) if total else 0.0, "request_count": total.requests if total else 0,
            "config": {name: out[name] for name in CONFIG_FIELDS}}  # fmt: skip


def projects_list(request, actor):
    today = timezone.localdate()
    per_project = _totals(selectors.usage_cells(_since_start(today), today, by=("project",)).cells, "project_id")
    return {"projects": [project_out(p, per_project.get((p.id,))) for p in Project.objects.order_by("id")]}


def _body(request, allowed: set) -> tuple[dict, dict]:
    """(the body, its `config`), every unknown name refused."""
    body = json_body(request)
    config = body.get("config") or {}
    if not isinstance(config, dict):
        raise Refused(422, "config: expected an object")
    unknown = [n for n in body if n not in allowed] + [f"config.{n}" for n in config if n not in CONFIG_FIELDS]
    if unknown:
        raise Refused(422, f"unknown fields: {', '.join(unknown)} (config may carry {', '.join(CONFIG_FIELDS)})")
    return body, config


def projects_create(request, actor):
    body, config = _body(request, {"name", "api_key", "rate_limit_rpm", "config"})
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise Refused(422, "name: required")
    item = {"slug": slugify(name)[:50] or "project", "name": name, "rpm": body.get("rate_limit_rpm", SEED_DEFAULT_RPM)}
    with audit.capture(actor=actor, source="api"), transaction.atomic():
        project = projects_api.project_create({**item, **config})
        if body.get("api_key") is not None:  # the project's client key, exactly as given (as GATEWAY_API_KEY is)
            config_item_apply("inbound_keys", {"project": project.slug, "name": "api_key", "secret": body["api_key"]})
            if not project.keys.exists():
                raise Refused(409, "api_key: already the key of another project")
    return {"id": project.id, "slug": project.slug, "name": project.name, "rate_limit_rpm": project.rpm_limit,
            "created_at": project.created_at.isoformat()}  # fmt: skip


def projects_update(request, actor, project_id: str):
    body, config = _body(request, {"name", "rate_limit_rpm", "is_active", "config"})
    project = _project(project_id)
    renamed = {"name": "name", "rate_limit_rpm": "rpm", "is_active": "active"}
    changes = {**config, **{renamed[k]: v for k, v in body.items() if k in renamed and v is not None}}
    with audit.capture(actor=actor, source="api"):
        project = projects_api.project_change(project.slug, changes)
    return {"id": project.id, "name": project.name, "updated": True}


def projects_delete(request, actor, project_id: str):
    """Deactivated, as the Coding Gateway did: its keys stop working, its history stays."""
    project = _project(project_id)
    with audit.capture(actor=actor, source="api"):
        projects_api.project_deactivate(project.slug)
    return {"id": project.id, "deleted": True}


# Before the Django admin's own patterns in gateway_site/urls.py. Exact paths, as the Coding Gateway's clients call
# them: with a trailing slash a path is the admin's alone (/admin/usage/ is the usage app's page, and the admin's
# catch-all resolves path + "/" to decide its slash redirects).
urlpatterns = [
    path("admin/metrics", endpoint(GET=metrics)),
    path("admin/usage", endpoint(GET=usage)),
    path("admin/usage/daily", endpoint(GET=usage_daily)),
    path("admin/costs", endpoint(GET=costs)),
    path("admin/errors", endpoint(GET=errors)),
    path("admin/errors/stats", endpoint(GET=error_stats)),
    path("admin/projects", endpoint(GET=projects_list, POST=projects_create)),
    path("admin/projects/<str:project_id>", endpoint(PUT=projects_update, DELETE=projects_delete)),
]


# --- /chat: the model API's simple endpoint ----------------------------------------------------------------------

router = Router(tags=["the Coding Gateway"])
SEED_DEFAULT_MODEL = "claude-sonnet-4-0"  # its DEFAULT_MODEL's default; env-only starts route claude-* names
ROUTED = ("", "auto", "smartroute")  # the Coding Gateway's "you choose": the default model (smart routing applies)


@router.post("/chat", auth=proxy_api.KEY, summary="The Coding Gateway's simple chat: messages in, text out")
async def chat(request: HttpRequest):
    body = chat_request(proxy_api.read_json_body(request))
    result = await core.run(request.auth, "openai", body, client_headers=request.headers)
    return JsonResponse(chat_answer(result), headers=result.headers)


def chat_request(data: dict) -> dict:
    """{model?, system?, messages: [{role, content: text}], max_tokens?, temperature?} -> a Chat Completions body."""
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: a non-empty list of {role, content} is required")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant", "system") or not (
            isinstance(message.get("content"), str)
        ):
            raise InvalidRequest(f'messages[{i}]: expected {{"role": "user" | "assistant", "content": text}}')
    system = data.get("system")
    if system is not None and not isinstance(system, str):
        raise InvalidRequest("system: expected text")
    model = data.get("model")
    if model is None or model in ROUTED:
        model = getattr(settings, "GATEWAY_DEFAULT_MODEL", "") or SEED_DEFAULT_MODEL
    turns = [{"role": "system", "content": system}] if system else []
    body = {"model": model, "messages": turns + [{"role": m["role"], "content": m["content"]} for m in messages]}
    body.update({name: data[name] for name in ("max_tokens", "temperature") if data.get(name) is not None})
    return body


def chat_answer(result: core.Result) -> dict:
    """A Chat Completions answer as the Coding Gateway's /chat gave it."""
    answer = orjson.loads(result.content)
    message = ((answer.get("choices") or [{}])[0]).get("message") or {}
    tokens = answer.get("usage") or {}
    return {"cached": result.headers.get("x-cache") == "HIT", "model": answer.get("model"),
            "text": message.get("content") or "",
            "usage": {"input_tokens": tokens.get("prompt_tokens", 0), "output_tokens": tokens.get("completion_tokens", 0)}}  # fmt: skip
