"""Budgets: a spending limit in USD per calendar month and per calendar day (UTC), per project and per key.

Money is counted in integer units of 1e-8 USD (the ledger's cost quantum), so the store's counters and the
ledger's Decimal costs agree exactly. State keys: budget:<p|k>:<id>:<m|d>:<period>, e.g. budget:p:3:m:2026-11.
The ledger is the truth: a counter the store does not have (first use in a period, Redis flushed or replaced)
is seeded from the ledger's sum for that period before the request is admitted.

A request reserves its maximum cost; when it ends the reservation is replaced by the exact cost (or released
when it failed), so concurrent requests never spend more than the budget allows. A request whose maximum does not
fit what is left is refused with BudgetExceeded, which says which budget and when it resets. Crossing the
project's alert share (budget_alert_percent, default 80%) logs one warning per budget and period per process.
"""

import calendar
import functools
import logging
import math
from datetime import date, datetime, timedelta
from datetime import timezone as tz
from decimal import Decimal

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from usage import pricing, selectors

from ..errors import BudgetExceeded
from .state import Admission, Budget

log = logging.getLogger(__name__)

NANOS = Decimal(100_000_000)
_alerted: set[str] = set()


def any_for(key) -> bool:
    return bool(key.key_month_budget or key.key_day_budget or key.project_month_budget or key.project_day_budget)


def nanos(usd: Decimal) -> int:
    return int((usd * NANOS).to_integral_value(rounding="ROUND_CEILING"))


def periods(now: datetime) -> dict[str, tuple[str, datetime, datetime]]:
    """'m' and 'd' -> (label, start, end) of the current calendar month and day, UTC."""
    return _periods_of(now.date())


@functools.lru_cache(maxsize=4)  # computed once a day, not once a request
def _periods_of(day: date) -> dict[str, tuple[str, datetime, datetime]]:
    now = datetime(day.year, day.month, day.day, tzinfo=tz.utc)
    day_start = now
    month_start = day_start.replace(day=1)
    month_end = month_start + timedelta(days=calendar.monthrange(now.year, now.month)[1])
    return {
        "m": (month_start.strftime("%Y-%m"), month_start, month_end),
        "d": (day_start.strftime("%Y-%m-%d"), day_start, day_start + timedelta(days=1)),
    }


def specs(key, reserve: int, now: datetime | None = None) -> list[Budget]:
    current = periods(now or datetime.now(tz.utc))
    wanted = (
        ("p", key.project_id, "m", key.project_month_budget),
        ("p", key.project_id, "d", key.project_day_budget),
        ("k", key.id, "m", key.key_month_budget),
        ("k", key.id, "d", key.key_day_budget),
    )
    budgets = []
    for scope, scope_id, period, limit in wanted:
        if limit:
            label, _, end = current[period]
            budgets.append(Budget(f"budget:{scope}:{scope_id}:{period}:{label}", nanos(limit), reserve, int(end.timestamp())))
    return budgets


def max_cost(snapshot, route, body: dict, input_tokens: int, output_tokens: int) -> int:
    """The most this request can cost, in nanos: at the dearest price among the route's targets, priced by
    usage.pricing.cost (the long-context tier included: an estimate above a price's threshold reserves at the
    tier's rates, as the request will be charged)."""
    today = datetime.now(tz.utc).date()
    worst = 0
    for target in route.targets:
        model = body.get("model") if target.remote_model == "*" else target.remote_model
        price = snapshot.price(model, today) if isinstance(model, str) else None
        if price is not None:
            cost = pricing.cost(input_tokens=input_tokens, output_tokens=output_tokens, cache_read=0, cache_write=0,
                                price=price)  # fmt: skip
            worst = max(worst, nanos(cost))
    return worst


async def seed(state, keys: list[str], budgets: list[Budget]) -> None:
    """Counters the store lacks start from the ledger's sum for their period."""
    by_key = {b.key: b for b in budgets}
    for key in keys:
        _, scope, scope_id, period, label = key.split(":")
        start = _period_start(period, label)
        spent = await sync_to_async(_ledger_spend, thread_sensitive=False)(scope, int(scope_id), start)
        await state.seed_budget(key, nanos(spent), by_key[key].expires_at)


def _ledger_spend(scope: str, scope_id: int, since: datetime) -> Decimal:
    close_old_connections()  # an executor thread that outlives requests: drop a stale connection first
    if scope == "p":
        return selectors.spend_since(project_id=scope_id, since=since)
    return selectors.spend_since(key_id=scope_id, since=since)


def _period_start(period: str, label: str) -> datetime:
    fmt = "%Y-%m" if period == "m" else "%Y-%m-%d"
    return datetime.strptime(label, fmt).replace(tzinfo=tz.utc)


def refusal(key, budget_key: str) -> BudgetExceeded:
    _, scope, _, period, label = budget_key.split(":")
    start = _period_start(period, label)
    _, _, end = periods(start)[period]
    limit = key.project_month_budget if (scope, period) == ("p", "m") else key.project_day_budget
    if scope == "k":
        limit = key.key_month_budget if period == "m" else key.key_day_budget
    whose = f"project {key.project_slug}" if scope == "p" else f"API key {key.prefix}…"
    span = "monthly" if period == "m" else "daily"
    return BudgetExceeded(
        f"The {span} budget of {whose} (${limit}) is used up; it resets at {end.strftime('%Y-%m-%dT%H:%M:%SZ')}."
    )


def alert(key, budgets: list[Budget], admission: Admission) -> None:
    """Log once per budget and period when spending crosses the project's alert share."""
    for budget in budgets:
        if budget.key in _alerted or not budget.limit:
            continue
        used = admission.budgets.get(budget.key, 0)
        if used * 100 >= budget.limit * key.budget_alert_percent:
            _alerted.add(budget.key)
            log.warning(
                "budget %s is at %d%% (alert at %d%%)", budget.key, math.floor(used * 100 / budget.limit),
                key.budget_alert_percent,
            )
