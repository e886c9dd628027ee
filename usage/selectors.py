"""Reads of the ledger and its rollups, for whoever needs numbers: budgets (proxy.policies), the admin pages, the
finance report, the dashboard. One source of numbers: a figure shown anywhere comes from a function here.

    spend_since        one project's or key's cost since a moment (raw rows, index (project|key, created_at, cost))
    ledger_rollup      a day's raw rows summed per project x key x alias x model x provider (unsaved DailyRollup
                       rows, percentiles included): what services.rollup_day stores
    usage_cells        the report's base: rollups for past days, raw rows only for today (and for any past day not
                       rolled up yet), summed per day x project x key x model x provider
    spend_by_scope     month-to-date, today's and the recent days' spend per project and per key (budget burn,
                       forecast, dashboard)
    unpriced_models    models with traffic recorded at $0 because no price was in force (the unpriced marker)
    last_hour          requests and errors of the last hour (dashboard)

Rules that keep them fast at a year of traffic: raw rows are read only through a created_at range (an index),
and a range of past days reads DailyRollup (a few hundred rows a day), never the raw table. Sums of money are
exact on both databases: SQLite stores decimals as REAL, so costs are summed as integer units of the ledger's
quantum ($0.00000001) and turned back into Decimal here (`_money_sum`).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import BigIntegerField, Count, F, Q, Sum, Value
from django.db.models.functions import Cast, Round, TruncDate, TruncHour
from django.utils import timezone

from .forecast import RECENT_DAYS
from .models import BillLine, DailyRollup, ModelPrice, RolledDay, UsageRecord
from .pricing import QUANTUM

NANOS = 10**8  # the ledger's quantum as an integer scale


def spend_since(*, project_id: int | None = None, key_id: int | None = None, since: datetime) -> Decimal:
    """Total cost of one project's or one key's requests since `since` (exact Decimal)."""
    rows = UsageRecord.objects.filter(created_at__gte=since)
    rows = rows.filter(project_id=project_id) if project_id is not None else rows.filter(api_key_id=key_id)
    return rows.aggregate(total=Sum("cost_usd"))["total"] or Decimal(0)


def day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _money_sum(column: str):
    """SUM of a money column in integer quanta: exact on SQLite (REAL storage) and PostgreSQL alike."""
    return Sum(Cast(Round(F(column) * Value(NANOS)), BigIntegerField()))


def _money(nanos) -> Decimal:
    return (Decimal(nanos or 0) / NANOS).quantize(QUANTUM)


# --- the rollup of one day ----------------------------------------------------------------------------------

_ROLLUP_COLUMNS = ("project_id", "api_key_id", "alias", "remote_model", "provider", "outcome", "input_tokens",
                   "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd", "saved_usd", "latency_ms",
                   "ttft_ms")  # fmt: skip


def _percentile(values: list[int], share: float) -> int:
    """Nearest-rank percentile of a sorted list."""
    if not values:
        return 0
    rank = max(1, -int(-share * len(values) // 1))  # ceil(share * n)
    return values[min(rank, len(values)) - 1]


def ledger_rollup(day: date) -> list[DailyRollup]:
    """The day's raw rows summed per project x key x alias x model x provider, as unsaved DailyRollup rows. Money
    is summed as Decimal in Python (exact), latencies kept per group for their percentiles. One pass over the
    day's rows through the created_at index."""
    start = day_start(day)
    rows = (
        UsageRecord.objects.filter(created_at__gte=start, created_at__lt=start + timedelta(days=1))
        .order_by()
        .values_list(*_ROLLUP_COLUMNS)
    )
    groups: dict[tuple, DailyRollup] = {}
    latencies: dict[tuple, list[int]] = defaultdict(list)
    ttfts: dict[tuple, list[int]] = defaultdict(list)
    outcome_columns = DailyRollup.OUTCOME_COLUMNS
    for project_id, key_id, alias, model, provider, outcome, inp, out, c_read, c_write, cost, saved, latency, ttft in (
        rows.iterator(chunk_size=5000)
    ):
        group = (project_id, key_id, alias, model, provider)
        r = groups.get(group)
        if r is None:
            r = groups[group] = DailyRollup(day=day, project_id=project_id, api_key_id=key_id, alias=alias,
                                            model=model, provider=provider, cost_usd=Decimal(0), saved_usd=Decimal(0))  # fmt: skip
        r.requests += 1
        column = outcome_columns[outcome]
        setattr(r, column, getattr(r, column) + 1)
        r.input_tokens += inp
        r.output_tokens += out
        r.cache_read_tokens += c_read
        r.cache_write_tokens += c_write
        r.cost_usd += cost
        r.saved_usd += saved or 0
        latencies[group].append(latency)
        if ttft is not None:
            ttfts[group].append(ttft)
    for group, r in groups.items():
        values = sorted(latencies[group])
        r.latency_p50_ms, r.latency_p95_ms = _percentile(values, 0.5), _percentile(values, 0.95)
        r.ttft_p50_ms = _percentile(sorted(ttfts[group]), 0.5) if ttfts[group] else None
    return list(groups.values())


def rolled_days(first: date, last: date) -> set[date]:
    days = RolledDay.objects.filter(day__gte=first, day__lte=last, rolled_at__isnull=False)
    return set(days.values_list("day", flat=True))


# --- the report's base cells ----------------------------------------------------------------------------------

DIMENSIONS = {  # report name -> (DailyRollup column, UsageRecord column)
    "project": ("project_id", "project_id"),
    "key": ("api_key_id", "api_key_id"),
    "model": ("model", "remote_model"),
    "provider": ("provider", "provider"),
    "alias": ("alias", "alias"),  # the route the request matched; asked for by name only (not in BY_ALL)
}
BY_ALL = ("day", "project", "key", "model", "provider")
_BY_ORDER = (*BY_ALL, "alias")
COUNTERS = ("requests", "errors", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
            "cache_hits")
_CELL_ATTR = {"project": "project_id", "key": "key_id", "model": "model", "provider": "provider", "alias": "alias"}


@dataclass(slots=True, kw_only=True)
class Counters:
    """The sums of usage the finance numbers show (COUNTERS, cost and saved): a Cell's, a report Row's."""

    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_hits: int = 0
    cost: Decimal = field(default_factory=Decimal)
    saved: Decimal = field(default_factory=Decimal)  # cost avoided by the response cache and token reduction


@dataclass(slots=True)
class Cell(Counters):
    """Usage of one day x project x key x model x provider; a dimension not asked for (usage_cells' `by`) is None."""

    day: date | None = None
    project_id: int | None = None
    key_id: int | None = None
    model: str | None = None
    provider: str | None = None
    alias: str | None = None


@dataclass(slots=True)
class Cells:
    cells: list[Cell]
    raw_days: list[date]  # days read from raw rows: today, and past days not rolled up yet


def usage_cells(first: date, last: date, filters: dict | None = None, *, by: tuple[str, ...] = BY_ALL,
                today: date | None = None, zero_cost: bool = False) -> Cells:  # fmt: skip
    """Usage summed per the dimensions in `by` ("day" and DIMENSIONS names) for the days first..last (inclusive),
    narrowed by `filters` (DIMENSIONS name -> value). Past days that are rolled up come from DailyRollup; the raw
    ledger is read only for today and for past days with no rollup yet, each through its created_at range. Ask
    for the dimensions you show: the database groups, so a 90-day report reads a few hundred sums, not every
    day x key x model cell. A combination may appear twice (once from rollups, once from raw rows): sum them.
    `zero_cost`: only rows (rollups, raw rows) that cost nothing, so a search for them sums only those."""
    today = today or timezone.localdate()
    filters = {k: v for k, v in (filters or {}).items() if k in DIMENSIONS and v not in (None, "")}
    by = tuple(d for d in _BY_ORDER if d in by)
    cells: list[Cell] = []
    past_last = min(last, today - timedelta(days=1))
    rolled = sorted(rolled_days(first, past_last)) if first <= past_last else []
    for start, end in _spans(rolled):
        cells += _rollup_cells(start, end, filters, by, zero_cost)
    rolled_set = set(rolled)
    raw_days = [first + timedelta(days=i) for i in range((min(last, today) - first).days + 1)]
    raw_days = [d for d in raw_days if d not in rolled_set]
    for start, end in _spans(raw_days):
        cells += _raw_cells(start, end, filters, by, zero_cost)
    return Cells(cells=cells, raw_days=raw_days)


def _spans(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) spans, so each span is one range query."""
    spans: list[list[date]] = []
    for d in days:
        if spans and spans[-1][1] + timedelta(days=1) == d:
            spans[-1][1] = d
        else:
            spans.append([d, d])
    return [(a, b) for a, b in spans]


def _rollup_cells(first: date, last: date, filters: dict, by: tuple[str, ...], zero_cost: bool = False) -> list[Cell]:
    rows = DailyRollup.objects.filter(day__gte=first, day__lte=last, **({"cost_usd": 0} if zero_cost else {}))
    rows = rows.filter(**{DIMENSIONS[k][0]: v for k, v in filters.items()})
    columns = {d: ("day" if d == "day" else DIMENSIONS[d][0]) for d in by}
    rows = rows.order_by().values(*columns.values()).annotate(
        n=Sum("requests"), err=Sum(F("requests") - F("ok") - F("cache_hits")), inp=Sum("input_tokens"),
        out=Sum("output_tokens"), c_read=Sum("cache_read_tokens"), c_write=Sum("cache_write_tokens"),
        cost=_money_sum("cost_usd"), hits=Sum("cache_hits"), saved=_money_sum("saved_usd"),
    )  # fmt: skip
    return [_cell(r, columns) for r in rows]


def _raw_cells(first: date, last: date, filters: dict, by: tuple[str, ...], zero_cost: bool = False) -> list[Cell]:
    end = day_start(last + timedelta(days=1))
    rows = UsageRecord.objects.filter(created_at__gte=day_start(first), created_at__lt=end)
    rows = rows.filter(cost_usd=0) if zero_cost else rows
    rows = rows.filter(**{DIMENSIONS[k][1]: v for k, v in filters.items()})
    columns = {d: DIMENSIONS[d][1] for d in by if d != "day"}
    if "day" in by and first != last:
        rows = rows.annotate(day=TruncDate("created_at"))
        columns = {"day": "day", **columns}
    rows = rows.order_by().values(*columns.values()).annotate(**_raw_sums())
    cells = [_cell(r, columns) for r in rows]
    if "day" in by and first == last:
        for c in cells:
            c.day = first
    return cells


def _raw_sums() -> dict:
    """The sums a Cell is made of, over raw ledger rows (the rollup's columns hold the same per day)."""
    return dict(
        n=Count("id"), err=Count("id", filter=~Q(outcome__in=("ok", "cache_hit"))), inp=Sum("input_tokens"),
        out=Sum("output_tokens"), c_read=Sum("cache_read_tokens"), c_write=Sum("cache_write_tokens"),
        cost=_money_sum("cost_usd"), hits=Count("id", filter=Q(outcome="cache_hit")), saved=_money_sum("saved_usd"),
    )  # fmt: skip


def _cell(r: dict, columns: dict[str, str]) -> Cell:
    cell = Cell(
        requests=r["n"] or 0, errors=r["err"] or 0, input_tokens=r["inp"] or 0, output_tokens=r["out"] or 0,
        cache_read_tokens=r["c_read"] or 0, cache_write_tokens=r["c_write"] or 0, cost=_money(r["cost"]),
        cache_hits=r["hits"] or 0, saved=_money(r["saved"]),
    )  # fmt: skip
    for dimension, column in columns.items():
        value = r[column]
        if dimension == "day":
            cell.day = value.date() if isinstance(value, datetime) else value
        else:
            setattr(cell, _CELL_ATTR[dimension], value)
    return cell


# --- budgets and the dashboard ------------------------------------------------------------------------------


@dataclass(slots=True)
class Spend:
    month: dict[tuple[str, int], Decimal]  # ("project"|"key", id) -> this month's spend
    today: dict[tuple[str, int], Decimal]
    days: dict[tuple[str, int], dict[date, Decimal]]  # each of the last forecast.RECENT_DAYS full days (0: absent)
    total_days: dict[date, Decimal]  # the same days, every row (with a project or without)
    month_total: Decimal = Decimal(0)  # every row of the month, with a project or without
    today_total: Decimal = Decimal(0)


def spend_by_scope(*, today: date | None = None) -> Spend:
    """This month's and today's spend per project and per key, and each of the RECENT_DAYS full days before today
    (the forecast's rate, usage/forecast.py), from usage_cells: rollups + today's raw rows, one read."""
    today = today or timezone.localdate()
    month_start = today.replace(day=1)
    recent_start = today - timedelta(days=RECENT_DAYS)
    spend = Spend(month=defaultdict(Decimal), today=defaultdict(Decimal), days=defaultdict(dict),
                  total_days=defaultdict(Decimal))
    for c in usage_cells(min(month_start, recent_start), today, by=("day", "project", "key"), today=today).cells:
        in_month, is_today = c.day >= month_start, c.day == today
        spend.month_total += c.cost if in_month else 0
        spend.today_total += c.cost if is_today else 0
        if not is_today and c.day >= recent_start:
            spend.total_days[c.day] += c.cost
        for scope, scope_id in (("project", c.project_id), ("key", c.key_id)):
            if scope_id is None:
                continue
            if in_month:
                spend.month[(scope, scope_id)] += c.cost
            if is_today:
                spend.today[(scope, scope_id)] += c.cost
            elif c.day >= recent_start:
                days = spend.days[(scope, scope_id)]
                days[c.day] = days.get(c.day, Decimal(0)) + c.cost
    spend.month, spend.today, spend.days = dict(spend.month), dict(spend.today), dict(spend.days)
    spend.total_days = dict(spend.total_days)
    return spend


# --- models with traffic and no price ---------------------------------------------------------------------


@dataclass(slots=True)
class Unpriced:
    model: str
    requests: int
    tokens: int  # input + output + cache read + cache write, all counted at $0
    first_day: date
    last_day: date
    aliases: set[str] = field(default_factory=set)  # the routes that sent it


def unpriced_models(first: date, last: date, *, today: date | None = None) -> list[Unpriced]:
    """Models with token traffic in first..last recorded at $0 on a day when no price of their own was in force:
    usage.pricing had no rates, so every report and budget counts them as free. A row with a price of all-zero
    rates (a model run for free, on purpose) is not flagged; a cloud id priced as the Anthropic model it names
    (proxy.routing.Snapshot.price) has a cost, so it is not flagged either. Reads usage_cells' rows that cost nothing (rollups
    + today's raw rows) by day x model x route alias, and the price rows of those models only."""
    found: dict[str, Unpriced] = {}
    cells = usage_cells(first, last, by=("day", "model", "alias"), today=today, zero_cost=True).cells
    suspects = [c for c in cells if c.model and _tokens(c)]
    priced = defaultdict(list)
    for model, since in ModelPrice.objects.filter(model__in={c.model for c in suspects}).values_list(
        "model", "effective_from"
    ):
        priced[model].append(since)
    for c in sorted(suspects, key=lambda c: c.day):
        if any(since <= c.day for since in priced[c.model]):
            continue
        u = found.get(c.model)
        if u is None:
            u = found[c.model] = Unpriced(c.model, 0, 0, c.day, c.day)
        u.requests, u.tokens, u.last_day = u.requests + c.requests, u.tokens + _tokens(c), c.day
        u.aliases.add(c.alias)
    return sorted(found.values(), key=lambda u: (-u.tokens, u.model))


def _tokens(c) -> int:
    return c.input_tokens + c.output_tokens + c.cache_read_tokens + c.cache_write_tokens


def last_hour(now: datetime | None = None) -> dict:
    """Requests, errors and cost in the last hour: one range read of the created_at index."""
    now = now or timezone.now()
    row = UsageRecord.objects.filter(created_at__gte=now - timedelta(hours=1)).aggregate(
        n=Count("id"), err=Count("id", filter=~Q(outcome__in=("ok", "cache_hit"))), cost=_money_sum("cost_usd")
    )
    return {"requests": row["n"] or 0, "errors": row["err"] or 0, "cost": _money(row["cost"])}


def requests_last_minute(now: datetime | None = None) -> dict[tuple[str, int], int]:
    """Requests per project and per key in the last minute (how close each is to its RPM limit). The minute's
    rows are counted here, not with GROUP BY: a grouped query may walk the (project, created_at) index whole."""
    now = now or timezone.now()
    counts: dict[tuple[str, int], int] = defaultdict(int)
    rows = UsageRecord.objects.filter(created_at__gte=now - timedelta(minutes=1)).order_by()
    for project_id, key_id in rows.values_list("project_id", "api_key_id").iterator(chunk_size=5000):
        if project_id is not None:
            counts[("project", project_id)] += 1
        if key_id is not None:
            counts[("key", key_id)] += 1
    return dict(counts)


def ledger_oldest_day() -> date | None:
    first = UsageRecord.objects.order_by("created_at").values_list("created_at", flat=True).first()
    return timezone.localdate(first) if first else None


# --- the management API's numbers (usage/manage_api.py) -------------------------------------------------------

HOURLY_MAX_DAYS = 7  # hourly series read raw rows: bounded so a call never scans more than a week of them


def usage_hours(first: date, last: date, filters: dict | None = None) -> list[Cell]:
    """Usage per hour x project x key x model x provider (Cell.day holds the hour's start) from raw rows, for at
    most HOURLY_MAX_DAYS days: rollups are daily, so hours exist only while the raw rows are kept."""
    filters = {k: v for k, v in (filters or {}).items() if k in DIMENSIONS and v not in (None, "")}
    rows = UsageRecord.objects.filter(created_at__gte=day_start(first), created_at__lt=day_start(last + timedelta(days=1)))
    rows = rows.filter(**{DIMENSIONS[k][1]: v for k, v in filters.items()}).annotate(hour=TruncHour("created_at"))
    rows = rows.order_by().values("hour", "project_id", "api_key_id", "remote_model", "provider").annotate(
        **_raw_sums()
    )
    cells = []
    for r in rows:
        cell = _cell(r, {"project": "project_id", "key": "api_key_id", "model": "remote_model", "provider": "provider"})
        cell.day = r["hour"]  # keep the hour
        cells.append(cell)
    return cells


def error_counts(first: date, last: date, filters: dict | None = None, *, today: date | None = None) -> dict:
    """Failed requests per (provider, outcome) for the days first..last: rollups for rolled-up past days, raw
    rows (through the outcome, created_at index) for the rest, exactly as usage_cells splits them."""
    today = today or timezone.localdate()
    filters = {k: v for k, v in (filters or {}).items() if k in DIMENSIONS and v not in (None, "")}
    counts: dict[tuple[str, str], int] = defaultdict(int)
    past_last = min(last, today - timedelta(days=1))
    rolled = rolled_days(first, past_last) if first <= past_last else set()
    failures = {o: c for o, c in DailyRollup.OUTCOME_COLUMNS.items() if o not in ("ok", "cache_hit")}
    if rolled:
        rows = DailyRollup.objects.filter(day__in=sorted(rolled), **{DIMENSIONS[k][0]: v for k, v in filters.items()})
        for r in rows.order_by().values("provider").annotate(**{o: Sum(c) for o, c in failures.items()}):
            for outcome in failures:
                if r[outcome]:
                    counts[(r["provider"], outcome)] += r[outcome]
    days = [first + timedelta(days=i) for i in range((min(last, today) - first).days + 1)]
    for start, end in _spans([d for d in days if d not in rolled]):
        rows = UsageRecord.objects.filter(outcome__in=list(failures), created_at__gte=day_start(start),
                                          created_at__lt=day_start(end + timedelta(days=1)))  # fmt: skip
        rows = rows.filter(**{DIMENSIONS[k][1]: v for k, v in filters.items()})
        for r in rows.order_by().values("provider", "outcome").annotate(n=Count("id")):
            counts[(r["provider"], r["outcome"])] += r["n"]
    return dict(counts)


def error_rows(first: date, last: date, filters: dict | None = None):
    """The failed requests themselves (raw rows, newest first): while the raw rows are kept."""
    filters = {k: v for k, v in (filters or {}).items() if k in DIMENSIONS and v not in (None, "")}
    rows = UsageRecord.objects.exclude(outcome__in=("ok", "cache_hit")).filter(
        created_at__gte=day_start(first), created_at__lt=day_start(last + timedelta(days=1))
    )
    return rows.filter(**{DIMENSIONS[k][1]: v for k, v in filters.items()})


def usage_first_day() -> date | None:
    """The first day with any usage: the oldest rolled-up day or raw row (raw rows may be retired once rolled up)."""
    rolled = DailyRollup.objects.order_by("day").values_list("day", flat=True).first()
    days = [d for d in (rolled, ledger_oldest_day()) if d is not None]
    return min(days) if days else None


# --- bills: the ledger next to the providers' own reports (usage/reconcile.py) --------------------------------


def ledger_by_account(provider: str, account: str, first: date, last: date) -> list[Cell]:
    """What the ledger counted for one provider account per day x remote model (Cell.day, Cell.model), the days
    first..last: raw rows through the (provider, created_at) index. Cache hits never reached the provider and
    are left out. Raw rows only: a day whose rows retention deleted has no per-account figures."""
    rows = UsageRecord.objects.filter(provider=provider, created_at__gte=day_start(first),
                                      created_at__lt=day_start(last + timedelta(days=1)))  # fmt: skip
    rows = rows.filter(account=account).exclude(outcome="cache_hit").annotate(day=TruncDate("created_at"))
    rows = rows.order_by().values("day", "remote_model").annotate(**_raw_sums())
    return [_cell(r, {"day": "day", "model": "remote_model"}) for r in rows]


def bill_lines(first: date, last: date, *, account_id: int | None = None, over_only: bool = False):
    """The stored reconciliation (BillLine) of the days first..last, newest day first."""
    lines = BillLine.objects.filter(day__gte=first, day__lte=last)
    if account_id:
        lines = lines.filter(account_id=account_id)
    return lines.filter(over_tolerance=True) if over_only else lines
