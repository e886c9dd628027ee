"""Pages of the usage package, mounted under /admin/reports/ (gateway_site/urls.py) with the admin's login.

    finance_report   the finance report: range, filters, grouping, charts, tables, budget burn, forecast and
                     runway, unpriced models; `?format=csv` downloads the grouped table the page shows, with
                     the exact amounts (the page rounds them to cents: usage/money.py)

Who may see them: active staff users with the ledger's view permission (superusers, the Finance group). The
pages only read (usage.report, usage.selectors).
"""

import csv
from datetime import timedelta
from functools import wraps
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from . import report as finance
from .money import exact

PERMISSION = "usage.view_usagerecord"


def can_view_reports(user) -> bool:
    return user.is_active and user.is_staff and user.has_perm(PERMISSION)


def reports_view(view):
    """The admin's login (and its redirect back) first, then the permission: 403 for staff without it."""

    @wraps(view)
    def checked(request, *args, **kwargs):
        if not can_view_reports(request.user):
            raise PermissionDenied("You may not view usage reports.")
        return view(request, *args, **kwargs)

    return admin.site.admin_view(checked)


@require_GET
def _finance_report(request):
    today = timezone.localdate()
    error = ""
    try:
        query = finance.Query.from_params(request.GET, today=today)
    except finance.QueryError as e:
        error = str(e)
        query = finance.Query.from_params({}, today=today)
    result = finance.finance_report(query, today=today)
    if request.GET.get("format") == "csv" and not error:
        return _csv(result)
    context = {
        **admin.site.each_context(request),
        "title": "Finance report",
        "report": result,
        "error": error,
        "groups": finance.GROUPS,
        "columns": finance.COLUMNS,
        "money": finance.MONEY,
        "price_link": request.user.has_perm("usage.add_modelprice"),
        "today": today,
        "presets": _presets(query, today),
        "csv_url": reverse("usage:finance_report") + "?" + urlencode(query.params(format="csv")),
        "chart_data": {
            "days": [d.isoformat() for d in result.days],
            "spend": result.spend_series,
            "daily": result.daily,
        },
    }
    return render(request, "usage/finance_report.html", context, status=400 if error else 200)


finance_report = reports_view(_finance_report)


def _presets(query, today) -> list[tuple[str, str, str]]:
    """(label, query string) of the usual ranges, keeping the filters and grouping."""
    month = today.replace(day=1)
    last_month = (month - timedelta(days=1)).replace(day=1)
    ranges = (("Today", today, today), ("7 days", today - timedelta(days=6), today),
              ("30 days", today - timedelta(days=29), today), ("90 days", today - timedelta(days=89), today),
              ("This month", month, today), ("Last month", last_month, month - timedelta(days=1)))  # fmt: skip
    return [(label, urlencode(query.params(**{"from": a.isoformat(), "to": b.isoformat()})), "")
            for label, a, b in ranges]  # fmt: skip


def _value(row, name: str):
    """Money exact in fixed point (usage/money.py), counts as they are."""
    value = getattr(row, name)
    return exact(value) if name in finance.MONEY else value


def _csv(result) -> HttpResponse:
    q = result.query
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="gatehouse-{q.group}-{q.first}-{q.last}.csv"'
    writer = csv.writer(response)
    writer.writerow([finance.GROUPS[q.group], *(title for _, title in finance.COLUMNS)])
    for row in [*result.rows, result.total]:
        writer.writerow([_cell(row.label), *(_value(row, name) for name, _ in finance.COLUMNS)])
    return response


def _cell(text: str) -> str:
    """Spreadsheets run a cell that starts with = + - @ as a formula: project and key names are user input."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
