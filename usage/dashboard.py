"""The admin index's dashboard (templates/admin/index.html, through the `usage_dashboard` tag): what a
team lead checks first. Every figure is a bounded read: spend from usage.selectors (rollups + today's raw rows),
the last hour and minute through the ledger's created_at index, accounts and budgets from their own small tables.
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
from django.db.models import Q, Sum
from django.utils import timezone

from accounts.models import ApiKey, Project, ProviderAccount

from . import report, selectors

CACHE_KEY = "usage:dashboard:v1"
CACHE_SECONDS = 30
RECENT_ERROR = timedelta(hours=1)
RUNNING_BATCH_STATUSES = ("validating", "in_progress", "canceling")


@dataclass
class Dashboard:
    spend_today: Decimal
    spend_month: Decimal
    budget_day: Decimal | None  # sum of the projects' daily budgets (None: no project has one)
    budget_month: Decimal | None
    hour_requests: int
    hour_errors: int
    unhealthy: list[dict]
    near_limits: list[dict]
    batches_running: int | None  # None: no batches model to ask
    built_at: object

    @property
    def hour_error_rate(self) -> float:
        return self.hour_errors / self.hour_requests if self.hour_requests else 0.0

    @property
    def month_percent(self) -> int | None:
        return int(self.spend_month * 100 / self.budget_month) if self.budget_month else None

    @property
    def day_percent(self) -> int | None:
        return int(self.spend_today * 100 / self.budget_day) if self.budget_day else None


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
    budgets = Project.objects.filter(active=True).aggregate(m=Sum("monthly_budget_usd"), d=Sum("daily_budget_usd"))
    return Dashboard(
        spend_today=sum((v for (scope, _), v in spend.today.items() if scope == "project"), Decimal(0)),
        spend_month=sum((v for (scope, _), v in spend.month.items() if scope == "project"), Decimal(0)),
        budget_day=budgets["d"], budget_month=budgets["m"],
        hour_requests=hour["requests"], hour_errors=hour["errors"],
        unhealthy=_unhealthy(now), near_limits=_near_limits(today, now), batches_running=_batches_running(),
        built_at=now,
    )  # fmt: skip


def _unhealthy(now) -> list[dict]:
    rows = (ProviderAccount.objects.filter(enabled=True, provider__enabled=True)
            .filter(Q(cooldown_until__gt=now) | Q(last_error_at__gte=now - RECENT_ERROR))
            .select_related("provider").order_by("-last_error_at")[:10])  # fmt: skip
    return [{"name": str(a), "id": a.id,
             "cooling_until": a.cooldown_until if a.cooldown_until and a.cooldown_until > now else None,
             "last_error": a.last_error, "last_error_at": a.last_error_at} for a in rows]


def _near_limits(today, now) -> list[dict]:
    """Budgets past their project's alert share, and RPM limits past 80 % in the last minute."""
    out = []
    for b in report.budget_burn(today=today):
        if b.percent >= b.alert_percent:
            period = "monthly" if b.period == "month" else "daily"
            out.append({"what": f"{b.scope} {b.label}", "percent": b.percent,
                        "detail": f"{b.percent}% of the {period} budget (${b.spent:.2f} of ${b.budget:.2f})"})
    limited = [("Project", "project", p.id, p.name, p.rpm_limit) for p in Project.objects.exclude(rpm_limit=None)]
    limited += [("API key", "key", k.id, f"{k.name} ({k.prefix}…)", k.rpm_limit)
                for k in ApiKey.objects.exclude(rpm_limit=None).filter(revoked_at=None)]  # fmt: skip
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
