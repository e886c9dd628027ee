"""Management API numbers and prices: what Finance and on-call scripts read.

Prices use the config file's shape and validator (`prices:` in accounts/config.py, applied by
usage/services.py). Usage, costs, errors and budget status come from usage/selectors.py, the same reads as the
finance report, so the two agree to the cent. Shared plumbing is in accounts/manage_common.py.
"""

import csv
import io
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from ninja import Router

from accounts import manage_schemas as S
from accounts.manage_common import ManagementError, config_item_apply, endpoint, json_body, not_found, page
from accounts.models import ApiKey, Project

from . import report, request_logs, selectors
from .models import ModelPrice, UsageRecord
from .money import exact

ZERO = exact(Decimal("0E-8"))  # "0.00000000": an empty total, written as a summed one is
router = Router(tags=["prices and usage"])

PRICE_RATES = ("input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok")


OPTIONAL_RATES = ("cache_write_1h_per_mtok", "long_input_per_mtok", "long_output_per_mtok",
                  "long_cache_read_per_mtok", "long_cache_write_per_mtok", "long_cache_write_1h_per_mtok")  # fmt: skip


def price_out(price: ModelPrice) -> dict:
    optional = {f: exact(getattr(price, f)) for f in OPTIONAL_RATES}
    return {"id": price.id, "model": price.model, **{f: exact(getattr(price, f)) for f in PRICE_RATES}, **optional,
            "batch_discount": exact(price.batch_discount), "effective_from": price.effective_from.isoformat(),
            "long_context_threshold": price.long_context_threshold}  # fmt: skip


@endpoint(router.get, "/prices", "Prices per model, newest first (effective-dated)", S.PricePage)
def prices_list(request: HttpRequest, cursor: str | None = None, limit: int = 50, model: str | None = None):
    queryset = ModelPrice.objects.filter(model=model) if model else ModelPrice.objects.all()
    return page(queryset, cursor=cursor, limit=limit, render=price_out)


@endpoint(router.post, "/prices", "Set a model's price from a date (default today); older rows keep their cost",
          S.PriceOut, status=201, body=S.PriceIn)  # fmt: skip
def prices_create(request: HttpRequest):
    body = json_body(request)
    with transaction.atomic():
        config_item_apply("prices", body)
        on = date.fromisoformat(str(body["effective_from"])) if body.get("effective_from") else None
        prices = ModelPrice.objects.filter(model=body["model"], **({"effective_from": on} if on else {}))
        price = prices.order_by("-effective_from").first()
    return JsonResponse(price_out(price), status=201)


@endpoint(router.delete, "/prices/{price_id}", "Delete a price row (rows already costed keep their cost)",
          None, status=204)  # fmt: skip
def prices_delete(request: HttpRequest, price_id: int):
    price = ModelPrice.objects.filter(id=price_id).first()
    if price is None:
        raise not_found(f"price {price_id}")
    price.delete()
    return HttpResponse(status=204)


# --- numbers: the finance report's reads (usage/selectors.py), as JSON or CSV ----------------------------------

GROUPS = ("project", "key", "model", "provider")
COUNTER_FIELDS = ("requests", "errors", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                  "cache_hits")


def _range(start: str | None, end: str | None) -> tuple[date, date]:
    """Inclusive days; default: this month so far. At most 400 days (rollups make that cheap)."""
    today = timezone.localdate()
    try:
        last = date.fromisoformat(end) if end else today
        first = date.fromisoformat(start) if start else last.replace(day=1)
    except ValueError:
        raise ManagementError(400, "invalid_request_error", "start and end are dates like 2026-11-01") from None
    if first > last or (last - first).days > 400:
        raise ManagementError(400, "invalid_request_error", "start must be on or before end, at most 400 days apart")
    return first, last


def _filters(project: str | None, key: int | None, model: str | None, provider: str | None) -> dict:
    filters = {"key": key, "model": model, "provider": provider}
    if project:
        project_id = Project.objects.filter(slug=project).values_list("id", flat=True).first()
        if project_id is None:
            raise not_found(f"project {project!r}")
        filters["project"] = project_id
    return filters


def _label(group: str, cell, names: dict) -> str | None:
    if group == "project":
        return names["project"].get(cell.project_id)
    if group == "key":
        return names["key"].get(cell.key_id)
    return getattr(cell, group) if group in ("model", "provider") else None


def _names(cells) -> dict:
    """Project slugs and key prefixes for the ids in the cells (two small reads)."""
    project_ids = {c.project_id for c in cells if c.project_id is not None}
    key_ids = {c.key_id for c in cells if c.key_id is not None}
    return {
        "project": dict(Project.objects.filter(id__in=project_ids).values_list("id", "slug")),
        "key": dict(ApiKey.objects.filter(id__in=key_ids).values_list("id", "prefix")),
    }


def _sum(cells, group: str | None, period) -> list[dict]:
    names = _names(cells)
    rows: dict[tuple, dict] = {}
    for cell in cells:
        ident = (period(cell) if period else None, _label(group, cell, names) if group else None)
        row = rows.get(ident)
        if row is None:
            row = rows[ident] = {**({"period": ident[0]} if period else {}), **({group: ident[1]} if group else {}),
                                 **dict.fromkeys(COUNTER_FIELDS, 0), "cost_usd": Decimal(0), "saved_usd": Decimal(0)}  # fmt: skip
        for name in COUNTER_FIELDS:
            row[name] += getattr(cell, name)
        row["cost_usd"] += cell.cost
        row["saved_usd"] += cell.saved
    out = sorted(rows.values(), key=lambda r: (str(r.get("period", "")), -r["cost_usd"]))
    for row in out:
        row["cost_usd"], row["saved_usd"] = exact(row["cost_usd"]), exact(row["saved_usd"])
    return out


def _csv(rows: list[dict], filename: str) -> HttpResponse:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@endpoint(router.get, "/usage", "Usage totals and a time series by day or hour, grouped and filtered", S.Usage)
def usage(request: HttpRequest, start: str | None = None, end: str | None = None, interval: str = "day",
          group_by: str | None = None, project: str | None = None, key: int | None = None, model: str | None = None,
          provider: str | None = None, format: str = "json"):  # fmt: skip
    if interval == "hour" and start is None:
        start = end or timezone.localdate().isoformat()  # hours: one day unless asked
    first, last = _range(start, end)
    if group_by is not None and group_by not in GROUPS:
        raise ManagementError(400, "invalid_request_error", f"group_by must be one of {', '.join(GROUPS)}")
    filters = _filters(project, key, model, provider)
    if interval == "day":
        cells, period = selectors.usage_cells(first, last, filters).cells, lambda c: c.day.isoformat()
    elif interval == "hour":
        if (last - first).days >= selectors.HOURLY_MAX_DAYS:
            days = selectors.HOURLY_MAX_DAYS
            raise ManagementError(400, "invalid_request_error", f"interval=hour covers at most {days} days")
        cells, period = selectors.usage_hours(first, last, filters), lambda c: c.day.isoformat()
    else:
        raise ManagementError(400, "invalid_request_error", "interval must be day or hour")
    series = _sum(cells, group_by, period)
    if format == "csv":
        return _csv(series, f"usage-{first}-{last}.csv")
    return {"start": first.isoformat(), "end": last.isoformat(), "interval": interval, "group_by": group_by,
            "totals": _sum(cells, None, None)[0] if cells else {**dict.fromkeys(COUNTER_FIELDS, 0), "cost_usd": ZERO,
                                                                "saved_usd": ZERO},
            "series": series}  # fmt: skip


@endpoint(router.get, "/costs", "Cost per project, key, model or provider over a date range (JSON or CSV)", S.Costs)
def costs(request: HttpRequest, start: str | None = None, end: str | None = None, group_by: str = "project",
          project: str | None = None, model: str | None = None, provider: str | None = None, format: str = "json"):  # fmt: skip
    first, last = _range(start, end)
    if group_by not in GROUPS:
        raise ManagementError(400, "invalid_request_error", f"group_by must be one of {', '.join(GROUPS)}")
    cells = selectors.usage_cells(first, last, _filters(project, None, model, provider)).cells
    rows = _sum(cells, group_by, None)
    if format == "csv":
        return _csv(rows, f"costs-{first}-{last}.csv")
    total = sum((c.cost for c in cells), Decimal(0))
    return {"start": first.isoformat(), "end": last.isoformat(), "group_by": group_by, "total_usd": exact(total),
            "data": rows}  # fmt: skip


@endpoint(router.get, "/errors/stats", "Failed requests by kind (outcome) and provider", S.ErrorStats)
def error_stats(request: HttpRequest, start: str | None = None, end: str | None = None, project: str | None = None,
                model: str | None = None, provider: str | None = None):  # fmt: skip
    first, last = _range(start, end)
    filters = _filters(project, None, model, provider)
    counts = selectors.error_counts(first, last, filters)
    requests = sum(c.requests for c in selectors.usage_cells(first, last, filters).cells)
    by_kind: dict[str, int] = {}
    by_provider: dict[str, int] = {}
    for (prov, outcome), n in counts.items():
        by_kind[outcome] = by_kind.get(outcome, 0) + n
        by_provider[prov or "(none)"] = by_provider.get(prov or "(none)", 0) + n
    errors = sum(counts.values())
    return {"start": first.isoformat(), "end": last.isoformat(), "requests": requests, "errors": errors,
            "error_rate": round(errors / requests, 6) if requests else 0.0, "by_kind": by_kind, "by_provider": by_provider,
            "by_provider_and_kind": [{"provider": p, "kind": o, "count": n} for (p, o), n in sorted(counts.items())]}  # fmt: skip


def error_out(row: UsageRecord) -> dict:
    return {"id": row.id, "request_id": row.request_id, "created_at": row.created_at.isoformat(),
            "project_id": row.project_id, "key_id": row.api_key_id, "model": row.requested_model or row.alias,
            "provider": row.provider, "http_status": row.http_status, "kind": row.outcome,
            "error_type": row.error_type, "message": row.error_message}  # fmt: skip


@endpoint(router.get, "/errors", "Failed requests, newest first (while raw ledger rows are kept)", S.ErrorPage)
def errors(request: HttpRequest, start: str | None = None, end: str | None = None, project: str | None = None,
           provider: str | None = None, cursor: str | None = None, limit: int = 50):  # fmt: skip
    first, last = _range(start, end)
    rows = selectors.error_rows(first, last, _filters(project, None, None, provider))
    return page(rows, cursor=cursor, limit=limit, render=error_out)


@endpoint(router.get, "/budgets",
          "Each project's and key's spend this month and today against its budgets, with the month-end forecast",
          S.Budgets)  # fmt: skip
def budgets(request: HttpRequest):
    """The finance pages' numbers (usage/report.py): the forecast and runway are usage/forecast.py's, the same
    the dashboard and the finance report show. Amounts are exact fixed-point strings (usage/money.py)."""
    today = timezone.localdate()
    spend = selectors.spend_by_scope(today=today)

    def status(scope: str, obj, name: str) -> dict:
        month, day = spend.month.get((scope, obj.id), Decimal(0)), spend.today.get((scope, obj.id), Decimal(0))
        outlook = report.scope_forecast(spend, scope, obj, today)
        return {scope: name, "month_usd": exact(month), "monthly_budget_usd": exact(obj.monthly_budget_usd),
                "month_percent": _percent(month, obj.monthly_budget_usd), "today_usd": exact(day),
                "daily_budget_usd": exact(obj.daily_budget_usd), "today_percent": _percent(day, obj.daily_budget_usd),
                "daily_rate_usd": exact(outlook.rate), "rate_days": outlook.rate_days,
                "month_forecast_usd": exact(outlook.month_end), "runs_out_on": outlook.runs_out,
                "budget_used_up": outlook.exhausted}  # fmt: skip

    projects = [status("project", p, p.slug) for p in Project.objects.filter(active=True).order_by("slug")]
    keys = [status("key", k, k.prefix) for k in ApiKey.objects.filter(revoked_at__isnull=True).exclude(
        monthly_budget_usd__isnull=True, daily_budget_usd__isnull=True).order_by("id")]  # fmt: skip
    return {"projects": projects, "keys": keys, "month_usd": exact(spend.month_total),
            "today_usd": exact(spend.today_total)}  # fmt: skip


def _percent(spent: Decimal, budget) -> float | None:
    return round(float(spent / budget * 100), 1) if budget else None


@router.get(
    "/request-logs/{request_id}",
    summary="A request's log (projects that keep them): metadata; the bodies for a `logs` or `write` token",
    response=S.responds(200, S.RequestLogOut),
    exclude_unset=True,
)
def request_log(request: HttpRequest, request_id: str):
    entry = request_logs.log_find(request_id)
    if entry is None:
        raise not_found(f"request log {request_id!r}")
    return request_logs.as_json(entry, with_bodies=request_logs.token_reads_bodies(request.auth))
