"""The finance report's figures, shaped from selectors.usage_cells (rollups for past days, raw rows for today):
the chosen range and filters in (`Query`), everything the page and its CSV show out (`Report`). Pure
arithmetic over the cells plus a few small lookups (project and key names); no other reads of the ledger.

Money is written out by usage/money.py (cents on the page, exact in the CSV); the forecast and runway are
usage/forecast.py's, fed here (budget_burn, project_outlook) from selectors.spend_by_scope.

To add a grouping: a DIMENSIONS entry in usage/selectors.py (rollup column, raw column), a label in `_labels`,
a choice in GROUPS. To add a column: a field on selectors.Counters (summed in both of usage_cells' queries), in
COLUMNS (the table and the CSV take it from there).
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from accounts.models import ApiKey, Project

from . import forecast, selectors
from .forecast import Forecast

GROUPS = {"project": "Project", "key": "API key", "model": "Model", "provider": "Provider"}
MAX_DAYS = 400
CHOICES_SECONDS = 300
CHART_SERIES = 8  # groups drawn on their own in the spend chart; the rest are summed as "other"
# (attribute of Row, column title): the on-screen table and the CSV, in this order
COLUMNS = (("requests", "Requests"), ("errors", "Errors"), ("input_tokens", "Input tokens"),
           ("output_tokens", "Output tokens"), ("cache_read_tokens", "Cache read tokens"),
           ("cache_write_tokens", "Cache write tokens"), ("cost", "Cost (USD)"), ("cache_hits", "Cache hits"),
           ("saved", "Saved (USD)"))  # fmt: skip
MONEY = frozenset({"cost", "saved"})  # columns shown as money


class QueryError(ValueError):
    pass


@dataclass(frozen=True)
class Query:
    first: date
    last: date
    group: str = "project"
    project: int | None = None
    key: int | None = None
    model: str = ""
    provider: str = ""

    @classmethod
    def from_params(cls, params, today: date | None = None) -> "Query":
        """From the page's GET parameters; QueryError names the bad one."""
        today = today or timezone.localdate()
        try:
            last = date.fromisoformat(params["to"]) if params.get("to") else today
            first = date.fromisoformat(params["from"]) if params.get("from") else last - timedelta(days=29)
        except ValueError:
            raise QueryError("from / to: dates are YYYY-MM-DD") from None
        if first > last:
            raise QueryError("from: the first day is after the last day")
        if (last - first).days >= MAX_DAYS:
            raise QueryError(f"from / to: at most {MAX_DAYS} days at a time")
        group = params.get("group") or "project"
        if group not in GROUPS:
            raise QueryError(f"group: one of {', '.join(GROUPS)}")
        ids = {}
        for name in ("project", "key"):
            try:
                ids[name] = int(params[name]) if params.get(name) else None
            except ValueError:
                raise QueryError(f"{name}: not an id") from None
        return cls(first=first, last=last, group=group, model=params.get("model", "")[:200],
                   provider=params.get("provider", "")[:100], **ids)  # fmt: skip

    @property
    def filters(self) -> dict:
        return {"project": self.project, "key": self.key, "model": self.model, "provider": self.provider}

    def params(self, **changes) -> dict:
        values = {"from": self.first.isoformat(), "to": self.last.isoformat(), "group": self.group,
                  "project": self.project or "", "key": self.key or "", "model": self.model, "provider": self.provider}  # fmt: skip
        return {k: v for k, v in {**values, **changes}.items() if v not in ("", None)}


@dataclass
class Row(selectors.Counters):
    label: str
    value: object = None

    def add(self, cell) -> None:
        for name in selectors.COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(cell, name))
        self.cost += cell.cost
        self.saved += cell.saved

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass
class Burn:
    scope: str  # "Project" or "API key"
    label: str
    period: str  # "month" or "today"
    spent: Decimal
    budget: Decimal
    forecast: Forecast | None  # monthly budgets: month-end forecast and runway (usage/forecast.py)
    alert_percent: int = 80  # the project's budget_alert_percent

    @property
    def percent(self) -> int:
        return int(self.spent * 100 / self.budget) if self.budget else 0

    @property
    def used(self) -> str:
        """The share used for a person: "<1%" rather than a misleading "0%" once anything is spent."""
        return "<1%" if self.spent and not self.percent else f"{self.percent}%"


@dataclass
class Report:
    query: Query
    rows: list[Row]  # by query.group, dearest first
    total: Row
    top_projects: list[Row]
    top_keys: list[Row]
    days: list[date]
    spend_series: list[dict]  # [{"label", "data": [per day]}], CHART_SERIES groups + "other"
    daily: dict[str, list]  # per day: requests, errors, input/output/cache tokens, cost
    burn: list[Burn]
    outlook: list[tuple[str, Forecast]]  # every project spending this month or with a budget: (name, forecast)
    unpriced: list[selectors.Unpriced]  # models with traffic in the range and no price (counted at $0)
    raw_days: list[date]  # days read from the raw ledger (today, and past days not rolled up yet)
    choices: dict[str, list[tuple]]  # filter dropdowns


def finance_report(query: Query, *, today: date | None = None) -> Report:
    """Three grouped reads (each: rollups for rolled-up past days + raw rows for the rest): per day x the chosen
    grouping (table, charts), per project x key (the top tables), per model x provider over every row of the
    range (the filters' choices)."""
    today = today or timezone.localdate()
    first, last, filters = query.first, query.last, query.filters
    series = selectors.usage_cells(first, last, filters, by=("day", query.group), today=today)
    # a key belongs to one project: one read serves both top tables
    scopes = selectors.usage_cells(first, last, filters, by=("project", "key"), today=today).cells
    offered = _offered(first, last, today)
    spend = selectors.spend_by_scope(today=today)
    labels = _labels(scopes, scopes)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    rows = _grouped(series.cells, query.group, labels)
    total = Row("Total")
    for c in series.cells:
        total.add(c)
    return Report(
        query=query, rows=rows, total=total,
        top_projects=_grouped(scopes, "project", labels)[:10], top_keys=_grouped(scopes, "key", labels)[:10],
        days=days, spend_series=_spend_series(series.cells, query.group, rows, days), daily=_daily(series.cells, days),
        burn=budget_burn(today=today, project=query.project, key=query.key, spend=spend),
        outlook=project_outlook(today=today, project=query.project, spend=spend), raw_days=series.raw_days,
        unpriced=selectors.unpriced_models(first, min(last, today), today=today) if first <= today else [],
        choices=_choices(offered, query),
    )  # fmt: skip


_ATTR = {"project": "project_id", "key": "key_id", "model": "model", "provider": "provider"}
_NONE = {"project": "(no project)", "key": "(no key)", "model": "(not routed)", "provider": "(not routed)"}


def _labels(projects, keys) -> dict[str, dict]:
    project_ids = {c.project_id for c in projects if c.project_id is not None}
    key_ids = {c.key_id for c in keys if c.key_id is not None}
    names = dict(Project.objects.filter(id__in=project_ids).values_list("id", "name"))
    key_rows = ApiKey.objects.filter(id__in=key_ids).select_related("project")
    key_rows = key_rows.only("id", "name", "prefix", "project__name")
    prefixes = {k.id: key_label(k) for k in key_rows}
    return {
        "project": {i: names.get(i, f"project #{i} (deleted)") for i in project_ids},
        "key": {i: prefixes.get(i, f"key #{i} (deleted)") for i in key_ids},
    }


def key_label(key) -> str:
    """A key as the finance pages name it: ApiKey's own name, its project first (names like "ci-bot" repeat across
    projects). The key's project must be loaded with it."""
    return str(key)


def _label(dimension: str, value, labels) -> str:
    if value in (None, ""):
        return _NONE[dimension]
    return labels.get(dimension, {}).get(value, str(value))


def _grouped(cells, dimension: str, labels) -> list[Row]:
    rows: dict[object, Row] = {}
    attr = _ATTR[dimension]
    for c in cells:
        value = getattr(c, attr)
        row = rows.get(value)
        if row is None:
            row = rows[value] = Row(_label(dimension, value, labels), value)
        row.add(c)
    return sorted(rows.values(), key=lambda r: (-r.cost, -r.requests, r.label))


def _spend_series(cells, dimension: str, rows: list[Row], days: list[date]) -> list[dict]:
    index = {d: i for i, d in enumerate(days)}
    shown = {r.value: r.label for r in rows[:CHART_SERIES]}
    series: dict[str, list[Decimal]] = {label: [Decimal(0)] * len(days) for label in shown.values()}
    attr = _ATTR[dimension]
    for c in cells:
        label = shown.get(getattr(c, attr), "other")
        series.setdefault(label, [Decimal(0)] * len(days))[index[c.day]] += c.cost
    return [{"label": label, "data": [float(v) for v in values]} for label, values in series.items()]


def _daily(cells, days: list[date]) -> dict[str, list]:
    index = {d: i for i, d in enumerate(days)}
    out = {name: [0] * len(days) for name in selectors.COUNTERS}
    cost = [Decimal(0)] * len(days)
    for c in cells:
        i = index[c.day]
        for name in selectors.COUNTERS:
            out[name][i] += getattr(c, name)
        cost[i] += c.cost
    out["cost"] = [float(v) for v in cost]
    return out


def _offered(first: date, last: date, today: date) -> list:
    """The models and providers seen in the range (the filters' choices), kept CHOICES_SECONDS: a choice that
    appears a little late costs nothing; reading them costs a scan of the range's rollups."""
    key = f"usage:report:offered:{first}:{last}:{today}"
    offered = cache.get(key)
    if offered is None:
        cells = selectors.usage_cells(first, last, by=("model", "provider"), today=today).cells
        offered = [(c.model, c.provider) for c in cells]
        cache.set(key, offered, CHOICES_SECONDS)
    return offered


def _choices(offered, query: Query) -> dict[str, list[tuple]]:
    projects = list(Project.objects.order_by("name").values_list("id", "name"))
    keys = [(k.id, key_label(k))
            for k in ApiKey.objects.select_related("project").order_by("project__name", "name")[:500]]  # fmt: skip
    models = sorted({m for m, _ in offered if m} | ({query.model} - {""}))
    providers = sorted({p for _, p in offered if p} | ({query.provider} - {""}))
    return {"project": projects, "key": keys, "model": [(m, m) for m in models],
            "provider": [(p, p) for p in providers]}


def budget_burn(*, today: date, project: int | None = None, key: int | None = None,
                spend: selectors.Spend | None = None) -> list[Burn]:  # fmt: skip
    """Every monthly and daily budget of a project or key against this month's / today's spend (projects, then
    keys, most used first); a monthly budget with its month-end forecast and runway."""
    projects = Project.objects.filter(id=project) if project else Project.objects.all()
    keys = ApiKey.objects.all()
    if key or project:
        keys = keys.filter(id=key) if key else keys.filter(project_id=project)
    budgeted = [("Project", "project", p, p.name, p.budget_alert_percent)
                for p in projects.exclude(monthly_budget_usd=None, daily_budget_usd=None)]
    budgeted += [("API key", "key", k, key_label(k), k.project.budget_alert_percent)
                 for k in keys.exclude(monthly_budget_usd=None, daily_budget_usd=None).filter(revoked_at=None)
                 .select_related("project")]  # fmt: skip
    if not budgeted:
        return []
    spend = spend or selectors.spend_by_scope(today=today)
    burn: list[Burn] = []
    for scope, name, obj, label, alert in budgeted:
        if obj.monthly_budget_usd:
            outlook = scope_forecast(spend, name, obj, today)
            burn.append(Burn(scope, label, "month", outlook.spent, obj.monthly_budget_usd, outlook, alert))
        if obj.daily_budget_usd:
            today_spend = spend.today.get((name, obj.id), Decimal(0))
            burn.append(Burn(scope, label, "today", today_spend, obj.daily_budget_usd, None, alert))
    return sorted(burn, key=lambda b: -b.percent)


def scope_forecast(spend: selectors.Spend, scope: str, obj, today: date) -> Forecast:
    """One project's or key's month-end forecast and its monthly budget's runway (usage/forecast.py)."""
    window = forecast.recent_window(today, timezone.localdate(obj.created_at))
    days = spend.days.get((scope, obj.id), {})
    return forecast.forecast(today=today, spent=spend.month.get((scope, obj.id), Decimal(0)),
                             recent=[days.get(d, Decimal(0)) for d in window], budget=obj.monthly_budget_usd)  # fmt: skip


def project_outlook(*, today: date, project: int | None = None,
                    spend: selectors.Spend | None = None) -> list[tuple[str, Forecast]]:  # fmt: skip
    """The forecast of every project that spent this month or has a monthly budget, dearest forecast first."""
    spend = spend or selectors.spend_by_scope(today=today)
    spent_ids = [i for (scope, i) in {**spend.month, **spend.days} if scope == "project"]
    projects = Project.objects.filter(Q(id__in=spent_ids) | Q(monthly_budget_usd__isnull=False))
    projects = projects.filter(id=project) if project else projects
    rows = [(p.name, scope_forecast(spend, "project", p, today)) for p in projects.order_by("name")]
    return sorted(rows, key=lambda r: -(r[1].month_end if r[1].month_end is not None else r[1].spent))
