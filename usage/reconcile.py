"""Reconciliation with the providers' bills: each provider account's own usage and cost reports (read by
usage.bill_reports), stored per day x account x model next to what the ledger counted (BillLine), with the rows
that differ by more than the tolerance flagged, logged and counted in a metric. docs/reconciliation.md.

    reconcile_all(days, accounts, include_today)   every enabled BillSource (the nightly job, the command)
    reconcile_source(source, first, last)          one account: fetch (API kinds) or re-read the stored bill
                                                   figures (CSV kind), then compare with the ledger
    csv_import(account, text)                      a CSV bill for one account, compared for the days it covers
    over_tolerance(line)                           the tolerance rule (GATEWAY_RECONCILE_TOLERANCE_PERCENT/_USD)

A run replaces the BillLines of the days it covers for that account as a whole (idempotent: run it again and
the same rows come out). Days are UTC calendar days, as the vendors' day buckets and the ledger's. Only past
days by default: a vendor's report for today is still filling in.
"""

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import bill_reports, metrics, selectors
from .bill_reports import TOKEN_FIELDS, Figures, model_key
from .models import BillLine, BillSource

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """One account's run: how many lines were written, which are over tolerance, or why it failed."""

    source: BillSource
    days: list[date] = field(default_factory=list)
    lines: int = 0
    over: list[BillLine] = field(default_factory=list)
    error: str = ""


def window(days: int | None = None, *, include_today: bool | None = None, today: date | None = None
           ) -> tuple[date, date]:  # fmt: skip
    """The last `days` complete days (GATEWAY_RECONCILE_DAYS), and today too when asked
    (GATEWAY_RECONCILE_INCLUDE_TODAY)."""
    today = today or timezone.localdate()
    days = settings.GATEWAY_RECONCILE_DAYS if days is None else days
    if include_today is None:
        include_today = settings.GATEWAY_RECONCILE_INCLUDE_TODAY
    last = today if include_today else today - timedelta(days=1)
    return last - timedelta(days=max(days, 1) - 1), last


def reconcile_all(days: int | None = None, *, accounts: list[str] | None = None, include_today: bool | None = None,
                  client=None) -> list[Outcome]:  # fmt: skip
    """Every enabled bill source (or those of `accounts`, "provider/account" names): one failing account does
    not stop the others; its error is kept on the source and logged."""
    first, last = window(days, include_today=include_today)
    sources = BillSource.objects.filter(enabled=True).select_related("account__provider").order_by("id")
    if accounts:
        sources = [s for s in sources if str(s.account) in accounts]
    return [reconcile_source(source, first, last, client=client) for source in sources]


def reconcile_source(source: BillSource, first: date, last: date, *, client=None) -> Outcome:
    if source.kind == "csv":
        stored = BillLine.objects.filter(account=source.account, day__gte=first, day__lte=last, source="csv")
        days = sorted({line.day for line in stored})
        billed = [_stored_figures(line) for line in stored if line.bill_cost_usd is not None or line.bill_input_tokens
                  is not None or line.bill_output_tokens is not None]  # fmt: skip
        return _settle(source, days, billed)
    try:
        figures = bill_reports.fetch(source, first, last, client)
    except bill_reports.BillFetchError as e:
        log.warning("bill reconciliation: %s: %s", source.account, e)
        metrics.bill_fetch_failed(source.account.provider.name, source.account.name)
        _mark(source, str(e))
        return Outcome(source, error=str(e))
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return _settle(source, days, figures)


def csv_import(source: BillSource, text: str) -> Outcome:
    """A CSV bill (bill_reports.csv_read; raises CsvProblem) compared for the days it lists."""
    figures = bill_reports.csv_read(text)
    return _settle(source, sorted({f.day for f in figures}), figures, kind="csv")


def _stored_figures(line: BillLine) -> Figures:
    return Figures(line.day, line.model, line.bill_input_tokens, line.bill_output_tokens,
                   line.bill_cache_read_tokens, line.bill_cache_write_tokens, line.bill_cost_usd)  # fmt: skip


def _settle(source: BillSource, days: list[date], figures: list[Figures], kind: str | None = None) -> Outcome:
    """Compare `figures` with the ledger for `days` and replace those days' lines of the account."""
    outcome = Outcome(source, days=days)
    if days:
        lines = _compare(source, days, figures, kind or source.kind)
        with transaction.atomic():
            BillSource.objects.select_for_update().filter(pk=source.pk).first()  # one run of an account at a time
            BillLine.objects.filter(account=source.account, day__in=days).delete()
            BillLine.objects.bulk_create(lines, batch_size=1000)
        outcome.lines, outcome.over = len(lines), [line for line in lines if line.over_tolerance]
    provider, account = source.account.provider.name, source.account.name
    metrics.bill_drift(provider, account, len(outcome.over))
    for line in outcome.over:
        log.warning("bill drift over tolerance: %s %s/%s %s: provider $%s vs gateway $%s; tokens in %s/%s, out "
                    "%s/%s", line.day, provider, account, line.model, line.bill_cost_usd, line.ledger_cost_usd,
                    line.bill_input_tokens, line.ledger_input_tokens, line.bill_output_tokens,
                    line.ledger_output_tokens)  # fmt: skip
    _mark(source, "")
    return outcome


def _compare(source: BillSource, days: list[date], figures: list[Figures], kind: str) -> list[BillLine]:
    account = source.account
    provider_name, account_name = account.provider.name, account.name
    wanted = set(days)
    bill = {(f.day, f.model): f for f in figures if f.day in wanted}
    ledger: dict[tuple[date, str], dict] = {}
    for cell in selectors.ledger_by_account(provider_name, account_name, min(days), max(days)):
        if cell.day in wanted:
            sums = ledger.setdefault((cell.day, model_key(cell.model)), dict.fromkeys(
                ("requests", *TOKEN_FIELDS), 0) | {"cost": Decimal(0)})  # fmt: skip
            for name in ("requests", *TOKEN_FIELDS):
                sums[name] += getattr(cell, name)
            sums["cost"] += cell.cost
    now = timezone.now()
    lines = []
    for day, model in sorted(set(bill) | set(ledger)):
        f, sums = bill.get((day, model)) or Figures(day, model), ledger.get((day, model)) or {}
        line = BillLine(day=day, account=account, provider_name=provider_name, account_name=account_name,
                        model=model, source=kind, checked_at=now, bill_cost_usd=f.cost_usd,
                        ledger_requests=sums.get("requests", 0), ledger_cost_usd=sums.get("cost", Decimal(0)))  # fmt: skip
        for name in TOKEN_FIELDS:
            setattr(line, f"bill_{name}", getattr(f, name))
            setattr(line, f"ledger_{name}", sums.get(name, 0))
        if (day, model) not in bill:
            line.bill_cost_usd = Decimal(0)  # the provider's figures for the day have no such model: it billed nothing
            for name in TOKEN_FIELDS:
                setattr(line, f"bill_{name}", 0)
        line.over_tolerance = over_tolerance(line)
        lines.append(line)
    return lines


def over_tolerance(line: BillLine) -> bool:
    """Over when the cost differs by more than GATEWAY_RECONCILE_TOLERANCE_USD *and* more than
    GATEWAY_RECONCILE_TOLERANCE_PERCENT of the provider's figure, or a token count by more than that percent.
    Numbers the provider's report does not give are not compared."""
    percent = Decimal(str(settings.GATEWAY_RECONCILE_TOLERANCE_PERCENT)) / 100
    limit = Decimal(str(settings.GATEWAY_RECONCILE_TOLERANCE_USD))
    if line.bill_cost_usd is not None:
        diff = abs(line.bill_cost_usd - line.ledger_cost_usd)
        if diff > limit and diff > abs(line.bill_cost_usd) * percent:
            return True
    for name in TOKEN_FIELDS:
        billed = getattr(line, f"bill_{name}")
        if billed is not None and abs(billed - getattr(line, f"ledger_{name}")) > billed * percent:
            return True
    return False


def _mark(source: BillSource, error: str) -> None:
    source.last_run_at, source.last_error = timezone.now(), error[:500]
    BillSource.objects.filter(pk=source.pk).update(last_run_at=source.last_run_at, last_error=source.last_error)


def source_for(account) -> BillSource:
    """The account's bill source; a CSV one is made for an account that has none (a CSV import names it)."""
    source, _ = BillSource.objects.get_or_create(account=account, defaults={"kind": "csv"})
    return source


def summary(outcomes: list[Outcome]) -> dict:
    """What a run did, for a log line or a task result: per account, lines written and over tolerance."""
    accounts = {str(o.source.account): {"lines": o.lines, "over": len(o.over), "error": o.error} for o in outcomes}
    text = "; ".join(f"{name}: " + (a["error"] or f"{a['lines']} lines, {a['over']} over tolerance")
                     for name, a in accounts.items()) or "no bill sources"  # fmt: skip
    return {"accounts": accounts, "text": text}


def tolerance_text() -> str:
    """The tolerance rule in words, for the page and the command."""
    return (f"cost off by more than ${settings.GATEWAY_RECONCILE_TOLERANCE_USD:g} and more than "
            f"{settings.GATEWAY_RECONCILE_TOLERANCE_PERCENT:g}%, or a token count off by more than "
            f"{settings.GATEWAY_RECONCILE_TOLERANCE_PERCENT:g}%")  # fmt: skip
