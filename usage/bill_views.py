"""The bill reconciliation page, /admin/reports/bills/ (usage/urls.py): the providers' own figures next to the
ledger's per day x account x model (usage.reconcile stores them), lines over tolerance highlighted; `?format=csv`
downloads the same lines with exact numbers. Who may see it: as the finance report (usage.views.reports_view).
A CSV bill is uploaded here by users who may change bill sources (docs/reconciliation.md, "CSV format").
"""

import csv
from datetime import date, timedelta
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts.models import ProviderAccount

from . import bill_reports, reconcile, selectors
from .bill_reports import TOKEN_FIELDS
from .views import _cell, reports_view

TOKEN_TITLES = {"input_tokens": "Input", "output_tokens": "Output", "cache_read_tokens": "Cache read",
                "cache_write_tokens": "Cache write"}  # fmt: skip
UPLOAD_PERMISSION = "usage.change_billsource"


@require_http_methods(["GET", "POST"])
def _bill_drift(request):
    if request.method == "POST":
        return _upload(request)
    today = timezone.localdate()
    first, last, error = _dates(request.GET, today)
    account_id = request.GET.get("account") or ""
    over_only = request.GET.get("over") == "1"
    lines = selectors.bill_lines(first, last, account_id=int(account_id) if account_id.isdigit() else None,
                                 over_only=over_only)  # fmt: skip
    if request.GET.get("format") == "csv" and not error:
        return _csv(lines, first, last)
    params = {"from": first.isoformat(), "to": last.isoformat(), "account": account_id, "over": "1" if over_only else ""}
    context = {
        **admin.site.each_context(request),
        "title": "Bills against the ledger",
        "rows": [_row(line) for line in lines],
        "titles": TOKEN_TITLES.values(),
        "first": first, "last": last, "error": error, "over_only": over_only, "account_id": account_id,
        "accounts": ProviderAccount.objects.select_related("provider").order_by("provider__name", "name"),
        "csv_url": reverse("usage:bill_drift") + "?" + urlencode({**params, "format": "csv"}),
        "can_upload": request.user.has_perm(UPLOAD_PERMISSION),
        "tolerance": reconcile.tolerance_text(),
    }  # fmt: skip
    return render(request, "usage/reconcile.html", context, status=400 if error else 200)


bill_drift = reports_view(_bill_drift)


def _dates(params, today: date) -> tuple[date, date, str]:
    """The range asked for (default: the last 14 days, today included), or the default and why."""
    try:
        last = date.fromisoformat(params["to"]) if params.get("to") else today
        first = date.fromisoformat(params["from"]) if params.get("from") else last - timedelta(days=13)
    except ValueError:
        return today - timedelta(days=13), today, "Dates are YYYY-MM-DD."
    if first > last:
        return today - timedelta(days=13), today, "The range starts after it ends."
    return first, last, ""


def _row(line) -> dict:
    tokens = []
    for name in TOKEN_FIELDS:
        billed, counted = getattr(line, f"bill_{name}"), getattr(line, f"ledger_{name}")
        tokens.append({"bill": billed, "ledger": counted, "diff": None if billed is None else billed - counted})
    cost_diff = None if line.bill_cost_usd is None else line.bill_cost_usd - line.ledger_cost_usd
    return {"line": line, "tokens": tokens, "cost_diff": cost_diff}


def _csv(lines, first: date, last: date) -> HttpResponse:
    """Every line with exact numbers: integers, fixed-point USD (never exponent notation), empty = not given."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="gatehouse-bills-{first}-{last}.csv"'
    writer = csv.writer(response)
    header = ["day", "provider", "account", "model", "source"]
    for name in (*TOKEN_FIELDS, "cost_usd"):
        header += [f"provider_{name}", f"gateway_{name}", f"difference_{name}"]
    writer.writerow([*header, "gateway_requests", "over_tolerance"])
    for line in lines:
        cells = [line.day.isoformat(), _cell(line.provider_name), _cell(line.account_name), _cell(line.model),
                 line.source]  # fmt: skip
        for name in (*TOKEN_FIELDS, "cost_usd"):
            billed, counted = getattr(line, f"bill_{name}"), getattr(line, f"ledger_{name}")
            cells += [_exact(billed), _exact(counted), "" if billed is None else _exact(billed - counted)]
        writer.writerow([*cells, line.ledger_requests, "yes" if line.over_tolerance else "no"])
    return response


def _exact(value) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:f}"


def _upload(request):
    """A CSV bill for one account: imported, compared for the days it lists, then back to the page."""
    if not request.user.has_perm(UPLOAD_PERMISSION):
        raise PermissionDenied("You may not import bills.")
    back = reverse("usage:bill_drift")
    account = ProviderAccount.objects.filter(pk=request.POST.get("account") or 0).first()
    upload = request.FILES.get("file")
    if account is None or upload is None:
        messages.error(request, "Choose the provider account and the CSV file of its bill.")
        return HttpResponseRedirect(back)
    try:
        outcome = reconcile.csv_import(reconcile.source_for(account), upload.read().decode("utf-8-sig"))
    except UnicodeDecodeError:
        messages.error(request, f"Could not import {upload.name}: not UTF-8 text.")
        return HttpResponseRedirect(back)
    except bill_reports.CsvProblem as e:
        messages.error(request, f"Could not import {upload.name}: {e}")
        return HttpResponseRedirect(back)
    if not outcome.days:
        messages.warning(request, f"Nothing imported: {upload.name} has no rows.")
        return HttpResponseRedirect(back)
    messages.success(request, f"{account}: {outcome.lines} line(s) from {outcome.days[0]} to {outcome.days[-1]}, "
                              f"{len(outcome.over)} over tolerance.")  # fmt: skip
    query = urlencode({"from": outcome.days[0].isoformat(), "to": outcome.days[-1].isoformat(), "account": account.pk})
    return HttpResponseRedirect(f"{back}?{query}")
