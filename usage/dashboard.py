"""The admin index's dashboard (templates/admin/index.html, through the `usage_dashboard` tag): what a
team lead checks first: spend today and this month (all of it), each budgeted project and key against its own
budget with the month-end forecast and runway (usage/report.budget_burn, usage/forecast.py), the spend outside
every budget shown apart, and models with traffic but no price. Every figure is a bounded read: spend from
usage.selectors (rollups + today's raw rows), the last hour and minute through the ledger's created_at index,
accounts and budgets from their own small tables.
Cached for CACHE_SECONDS, so a busy admin index costs the database one set of reads per half minute.

Unhealthy accounts come from ProviderAccount's own fields (cooldown_until, last_error_at), which the request path
writes when a breaker opens or a credential is refused: usage imports accounts only, never proxy. Running batches
are counted through the app registry (apps.get_model), so the panel says "—" when the batches app has no model.
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.apps import apps
from django.core.cache import cache
from django.db import DatabaseError
from django.db.models import Q
from django.utils import timezone

from accounts.models import ApiKey, Project, ProviderAccount

from . import forecast, report, selectors
from .forecast import Forecast
from .money import cents

CACHE_KEY = "usage:dashboard:v2"  # v2: budgets per scope, forecast, unpriced models
CACHE_SECONDS = 30
RECENT_ERROR = timedelta(hours=1)
RUNNING_BATCH_STATUSES = ("validating", "in_progress", "canceling")


@dataclass
class Dashboard:
    spend_today: Decimal  # every request's cost, with a project or without
    spend_month: Decimal
    budgets: list[report.Burn]  # each budgeted project and key against its own budget, most used first
    unbudgeted_today: Decimal  # today's spend of projects with no daily budget (and of requests with no project)
    unbudgeted_month: Decimal  # this month's spend of projects with no monthly budget (and with no project)
    month_forecast: Forecast  # all spend: month end at the recent daily rate (usage/forecast.py)
    unpriced: list[selectors.Unpriced]  # models with traffic this month recorded at $0 for want of a price
    hour_requests: int
    hour_errors: int
    unhealthy: list[dict]
    near_limits: list[dict]
    batches_running: int | None  # None: no batches model to ask
    built_at: object

    @property
    def hour_error_rate(self) -> float:
        return self.hour_errors / self.hour_requests if self.hour_requests else 0.0


def dashboard(*, use_cache: bool = True) -> Dashboard:
    if use_cache:
        cached = cache.get(CACHE_KEY)
        if cached is not None:
            return cached
    board = _build()
    cache.set(CACHE_KEY, board, CACHE_SECONDS)
    return board


def _build() -> Dashboard:
    now = timezone.now()
    today = timezone.localdate(now)
    spend = selectors.spend_by_scope(today=today)
    hour = selectors.last_hour(now)
    burn = report.budget_burn(today=today, spend=spend)
    return Dashboard(
        spend_today=spend.today_total, spend_month=spend.month_total, budgets=burn,
        unbudgeted_today=_unbudgeted(spend.today, spend.today_total, "daily_budget_usd"),
        unbudgeted_month=_unbudgeted(spend.month, spend.month_total, "monthly_budget_usd"),
        month_forecast=forecast.forecast(today=today, spent=spend.month_total, recent=[
            spend.total_days.get(d, Decimal(0)) for d in forecast.recent_window(today)]),
        unpriced=selectors.unpriced_models(today.replace(day=1), today, today=today),
        hour_requests=hour["requests"], hour_errors=hour["errors"],
        unhealthy=_unhealthy(now), near_limits=_near_limits(burn, now), batches_running=_batches_running(),
        built_at=now,
    )  # fmt: skip


def _unbudgeted(by_scope: dict, total: Decimal, budget_field: str) -> Decimal:
    """The period's spend outside every project budget of that period: the total less the budgeted projects'."""
    budgeted = Project.objects.exclude(**{budget_field: None}).values_list("id", flat=True)
    return total - sum((by_scope.get(("project", i), Decimal(0)) for i in budgeted), Decimal(0))


def _unhealthy(now) -> list[dict]:
    rows = (ProviderAccount.objects.filter(enabled=True, provider__enabled=True)
            .filter(Q(cooldown_until__gt=now) | Q(last_error_at__gte=now - RECENT_ERROR))
            .select_related("provider").order_by("-last_error_at")[:10])  # fmt: skip
    return [{"name": str(a), "id": a.id,
             "cooling_until": a.cooldown_until if a.cooldown_until and a.cooldown_until > now else None,
             "last_error": a.last_error, "last_error_at": a.last_error_at} for a in rows]


def _near_limits(burn: list, now) -> list[dict]:
    """Budgets past their project's alert share, and RPM limits past 80 % in the last minute."""
    out = []
    for b in burn:
        if b.percent >= b.alert_percent:
            period = "monthly" if b.period == "month" else "daily"
            out.append({"what": f"{b.scope} {b.label}", "percent": b.percent,
                        "detail": f"{b.percent}% of the {period} budget ({cents(b.spent)} of {cents(b.budget)})"})
    limited = [("Project", "project", p.id, p.name, p.rpm_limit) for p in Project.objects.exclude(rpm_limit=None)]
    limited += [("API key", "key", k.id, report.key_label(k), k.rpm_limit)
                for k in ApiKey.objects.exclude(rpm_limit=None).filter(revoked_at=None).select_related("project")]  # fmt: skip
    per_minute = selectors.requests_last_minute(now) if limited else {}
    for scope, name, obj_id, label, rpm in limited:
        used = per_minute.get((name, obj_id), 0)
        if rpm and used * 100 >= rpm * 80:
            out.append({"what": f"{scope} {label}", "detail": f"{used} of {rpm} requests in the last minute",
                        "percent": used * 100 // rpm})  # fmt: skip
    return sorted(out, key=lambda x: -x["percent"])[:15]


def _batches_running() -> int | None:
    try:
        batch = apps.get_model("batches", "Batch")
        return batch.objects.filter(status__in=RUNNING_BATCH_STATUSES).count()
    except (LookupError, DatabaseError):
        return None
