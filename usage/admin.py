"""Prices (editable) and the ledger (read-only for everyone, and cheap to browse however large it grows).

Every ledger page reads through an index and stops after a page of rows: the list and each of its filters,
alone or with a date range, walks an index on (filter column, created_at) newest first; the search is an exact
request id or resolves to model aliases first; the date navigation comes from the ledger's first and last rows
(two index lookups), not from a DISTINCT over the table; the page count stops at LedgerPaginator.CAP. Sorting by
a column other than the time is offered once the list is narrowed to a day, where any sort is cheap.
tests/test_admin_query_plans.py checks every query's plan; bench/admin_pages.py times the pages.
"""

import calendar
import re
from datetime import date, datetime, time, timedelta

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Exists, OuterRef
from django.db.models.expressions import RawSQL
from django.utils import formats, timezone
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.text import capfirst

from accounts.admin_audit import ReadOnly
from accounts.models import Provider

from .models import ModelPrice, UsageRecord
from .money import usd_html


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = ("model", "input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok",
                    "long_context_threshold", "effective_from", "in_force")  # fmt: skip
    fieldsets = (
        (None, {"fields": ("model", "effective_from")}),
        ("Rates (USD per million tokens)", {"fields": (
            "input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok",
            "cache_write_1h_per_mtok", "batch_discount")}),
        ("Long-context tier", {
            "description": "Only for models a vendor bills at higher rates when the prompt passes a size (e.g. "
                           "Claude Sonnet 4/4.5 with the 1M window above 200k, Gemini Pro above 200k). Fill in "
                           "the threshold and every rate, or leave all empty.",
            "fields": ("long_context_threshold", "long_input_per_mtok", "long_output_per_mtok",
                       "long_cache_read_per_mtok", "long_cache_write_per_mtok", "long_cache_write_1h_per_mtok")}),
    )  # fmt: skip
    list_filter = ("effective_from",)
    search_fields = ("model",)
    date_hierarchy = "effective_from"
    ordering = ("model", "-effective_from")

    def get_queryset(self, request):
        today = timezone.localdate()
        newer = ModelPrice.objects.filter(
            model=OuterRef("model"), effective_from__gt=OuterRef("effective_from"), effective_from__lte=today
        )
        return super().get_queryset(request).annotate(superseded=Exists(newer))

    @admin.display(description="status")
    def in_force(self, obj):
        if obj.effective_from > timezone.localdate():
            return "scheduled"
        return "superseded" if obj.superseded else mark_safe("<b>current</b>")

    def get_form(self, request, obj=None, **kwargs):
        kwargs["help_texts"] = {
            "effective_from": "Requests on or after this day are charged at these prices, until a later row starts."
        }
        return super().get_form(request, obj, **kwargs)


# --- the ledger -------------------------------------------------------------------------------------------


class LedgerPaginator(Paginator):
    """Counts at most CAP rows with a LIMIT query instead of COUNT(*) over the whole ledger: exact for small
    tables, "CAP rows" (CAP / per_page pages) for large ones. Narrow with the date range or filters. The count
    drops the ordering: any CAP matching rows will do, so the database reads whichever index finds them fastest
    and sorts nothing."""

    CAP = 10_000

    @cached_property
    def count(self):
        return len(self.object_list.order_by().values_list("pk", flat=True)[: self.CAP])


def ledger_aliases(limit: int) -> list[str]:
    """The distinct model aliases in the ledger, alphabetically, at most `limit`: one index lookup each on
    (alias, created_at) (a loose index scan), however many rows share an alias."""
    table = connection.ops.quote_name(UsageRecord._meta.db_table)
    sql = (
        f"WITH RECURSIVE a(alias) AS (SELECT MIN(alias) FROM {table} UNION ALL "
        f"SELECT (SELECT MIN(alias) FROM {table} WHERE alias > a.alias) FROM a WHERE a.alias IS NOT NULL) "
        "SELECT alias FROM a WHERE alias IS NOT NULL LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        return [row[0] for row in cursor.fetchall()]


def ledger_first_and_last() -> tuple[datetime | None, datetime | None]:
    """Oldest and newest created_at: two index lookups (one MIN and MAX query would scan on SQLite)."""
    times = UsageRecord.objects.values_list("created_at", flat=True)
    return times.order_by("created_at").first(), times.order_by("-created_at").first()


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _month_start(day: date, months_back: int = 0) -> date:
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


class CreatedRangeFilter(admin.SimpleListFilter):
    """Fixed ranges (today, yesterday, 7 and 30 days, this and last month) and a from/to pair of dates, both
    inclusive. All are ranges on created_at, which every ledger index ends with."""

    title = "date"
    parameter_name = "created"
    FROM, TO = "created_from", "created_to"
    template = "admin/usage/usagerecord/created_filter.html"
    PRESETS = {
        "today": "Today",
        "yesterday": "Yesterday",
        "7d": "Past 7 days",
        "30d": "Past 30 days",
        "month": "This month",
        "last_month": "Last month",
    }

    def __init__(self, request, params, model, model_admin):
        picked = {name: params.pop(name)[-1] for name in (self.FROM, self.TO) if name in params}
        super().__init__(request, params, model, model_admin)
        self.used_parameters.update(picked)
        skip = {self.parameter_name, self.FROM, self.TO, "p"}
        self.hidden_params = [(k, v) for k, values in request.GET.lists() if k not in skip for v in values]

    def lookups(self, request, model_admin):
        return list(self.PRESETS.items())

    def expected_parameters(self):
        return [self.parameter_name, self.FROM, self.TO]

    @property
    def from_value(self):
        return self.used_parameters.get(self.FROM, "")

    @property
    def to_value(self):
        return self.used_parameters.get(self.TO, "")

    def choices(self, changelist):
        yield {
            "selected": not (self.value() or self.from_value or self.to_value),
            "query_string": changelist.get_query_string(remove=self.expected_parameters()),
            "display": "Any date",
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}, [self.FROM, self.TO]),
                "display": title,
            }

    def queryset(self, request, queryset):
        try:
            start, end = created_range(self.value(), self.from_value, self.to_value)
        except ValueError as e:
            raise IncorrectLookupParameters(e) from e
        if start:
            queryset = queryset.filter(created_at__gte=start)
        if end:
            queryset = queryset.filter(created_at__lt=end)
        return queryset


def created_range(preset: str | None, day_from: str = "", day_to: str = "") -> tuple[datetime | None, datetime | None]:
    """[start, end) for a CreatedRangeFilter preset and/or from/to dates (ISO, inclusive); None = open."""
    now = timezone.now()
    today = timezone.localdate(now)
    start = end = None
    if preset:
        start, end = {
            "today": (_day_start(today), None),
            "yesterday": (_day_start(today - timedelta(days=1)), _day_start(today)),
            "7d": (now - timedelta(days=7), None),
            "30d": (now - timedelta(days=30), None),
            "month": (_day_start(_month_start(today)), None),
            "last_month": (_day_start(_month_start(today, 1)), _day_start(_month_start(today))),
        }.get(preset, (None, None))
        if start is None:
            raise ValueError(f"unknown date range {preset!r}")
    if day_from:
        picked = _day_start(date.fromisoformat(day_from))
        start = max(start, picked) if start else picked
    if day_to:
        picked = _day_start(date.fromisoformat(day_to) + timedelta(days=1))
        end = min(end, picked) if end else picked
    return start, end


def hierarchy_range(params) -> tuple[datetime | None, datetime | None]:
    """[start, end) of the date navigation's year / month / day parameters, as ChangeList applies them."""
    try:
        year = int(params.get("created_at__year", 0))
        month = int(params.get("created_at__month", 0))
        day = int(params.get("created_at__day", 0))
        if not year:
            return None, None
        if month and day:
            first = date(year, month, day)
            return _day_start(first), _day_start(first + timedelta(days=1))
        if month:
            first = date(year, month, 1)
            return _day_start(first), _day_start(_month_start(first, -1))
        return _day_start(date(year, 1, 1)), _day_start(date(year + 1, 1, 1))
    except (TypeError, ValueError, OverflowError):
        return None, None


class LedgerChangeList(ChangeList):
    def get_ordering(self, request, queryset):
        # A link or bookmark may ask for a sort the current range does not offer: fall back to newest first.
        if ORDER_VAR in self.params:
            allowed = {i for i, name in enumerate(self.list_display) if name in self.sortable_by}
            kept = [p for p in self.params[ORDER_VAR].split(".") if p.lstrip("-").isdigit() and
                    int(p.lstrip("-")) in allowed]  # fmt: skip
            if kept:
                self.params[ORDER_VAR] = self.filter_params[ORDER_VAR] = ".".join(kept)
            else:
                del self.params[ORDER_VAR], self.filter_params[ORDER_VAR]
        return super().get_ordering(request, queryset)

    @cached_property
    def sort_note(self) -> str:
        if "cost" in self.sortable_by:
            return ""
        return "Sorted newest first. Narrow the list to one day (above, or the date filter) to sort by any column."

    def date_navigation(self) -> dict:
        """The date drill-down (years, then months, then days), built from the ledger's first and last days
        instead of Django's SELECT DISTINCT over every row. A period listed may be empty for the current filters."""
        field = self.date_hierarchy
        year, month, day = (self.params.get(f"{field}__{part}") for part in ("year", "month", "day"))
        first, last = ledger_first_and_last()
        if first is None:
            return {"show": False}
        first, last = timezone.localdate(first), timezone.localdate(last)

        def link(filters):
            return self.get_query_string(filters, [f"{field}__"])

        def params(y, m=None, d=None):
            values = {f"{field}__year": str(y)}
            if m:
                values[f"{field}__month"] = str(m)
            if d:
                values[f"{field}__day"] = str(d)
            return values

        try:
            if not (year or month or day):
                if first.year == last.year:
                    year = first.year
                    if first.month == last.month:
                        month = first.month
            year, month, day = (int(v) if v else None for v in (year, month, day))
            if year and month and day:
                shown = date(year, month, day)
                return {
                    "show": True,
                    "back": {"link": link(params(year, month)),
                             "title": capfirst(formats.date_format(shown, "YEAR_MONTH_FORMAT"))},
                    "choices": [{"title": capfirst(formats.date_format(shown, "MONTH_DAY_FORMAT"))}],
                }  # fmt: skip
            if year and month:
                days = range(1, calendar.monthrange(year, month)[1] + 1)
                shown = [date(year, month, d) for d in days if first <= date(year, month, d) <= last]
                return {
                    "show": True,
                    "back": {"link": link(params(year)), "title": str(year)},
                    "choices": [{"link": link(params(year, month, d.day)),
                                 "title": capfirst(formats.date_format(d, "MONTH_DAY_FORMAT"))} for d in shown],
                }  # fmt: skip
            if year:
                months = [date(year, m, 1) for m in range(1, 13)]
                shown = [m for m in months if _month_start(first) <= m <= last]
                return {
                    "show": True,
                    "back": {"link": link({}), "title": "All dates"},
                    "choices": [{"link": link(params(year, m.month)),
                                 "title": capfirst(formats.date_format(m, "YEAR_MONTH_FORMAT"))} for m in shown],
                }  # fmt: skip
        except (TypeError, ValueError, OverflowError):
            pass
        return {
            "show": True,
            "back": None,
            "choices": [{"link": link(params(y)), "title": str(y)} for y in range(first.year, last.year + 1)],
        }


INGRESS_CHOICES = [("anthropic", "Anthropic Messages"), ("openai", "OpenAI Chat Completions"),
                   ("responses", "OpenAI Responses"), ("bedrock", "Bedrock-shaped Messages"),
                   ("vertex", "Vertex-shaped Messages")]
SESSION_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class IngressFilter(admin.SimpleListFilter):
    title = "ingress API"
    parameter_name = "ingress_api"

    def lookups(self, request, model_admin):  # fixed list: DISTINCT over the ledger would scan it all
        return INGRESS_CHOICES

    def queryset(self, request, queryset):
        return queryset.filter(ingress_api=self.value()) if self.value() else queryset


class ProviderNameFilter(admin.SimpleListFilter):
    title = "provider"
    parameter_name = "provider"

    def lookups(self, request, model_admin):  # from the small providers table, not the ledger
        return [(name, name) for name in Provider.objects.values_list("name", flat=True)]

    def queryset(self, request, queryset):
        return queryset.filter(provider=self.value()) if self.value() else queryset


class StreamFilter(admin.SimpleListFilter):
    title = "stream"
    parameter_name = "stream__exact"  # the parameter of Django's own boolean filter, so old links still work
    VALUES = {"1": True, "true": True, "0": False, "false": False}

    def lookups(self, request, model_admin):
        return [("1", "Yes"), ("0", "No")]

    def queryset(self, request, queryset):
        value = self.VALUES.get((self.value() or "").lower())
        if value is None:
            return queryset
        # IN, not =: Django writes `stream = true` as the bare column (`WHERE stream`), which SQLite cannot
        # look up in the (stream, created_at) index.
        return queryset.filter(stream__in=[value])


class AliasFilter(admin.SimpleListFilter):
    title = "model alias"
    parameter_name = "alias"
    SHOWN = 60  # more than this are still reachable with the search box

    def lookups(self, request, model_admin):
        return [(alias, alias or "(none)") for alias in ledger_aliases(self.SHOWN)]

    def queryset(self, request, queryset):
        return queryset.filter(alias=self.value()) if self.value() is not None else queryset


class RequestColumns:
    """List columns of a model with a request's fields (UsageRecord, RequestLog): related values share a column so
    a list fits 1024 px beside its filters (tests/browser/test_admin_screens.py, templates/admin/base_site.html)."""

    @admin.display(description="request id")
    def request(self, obj):
        return format_html('<span class="gh-cut" title="{}">{}</span>', obj.request_id, obj.request_id)

    @admin.display(description="project / key", ordering="project__name")
    def project_key(self, obj):
        if not obj.api_key_id:
            return str(obj.project or "—")
        key = obj.api_key
        return format_html('{} /<br><span title="{}">{}</span>', key.project, key, key.name)  # its project's own name

    @admin.display(description="API", ordering="ingress_api")
    def api(self, obj):
        return format_html("{}<br>stream", obj.ingress_api) if obj.stream else obj.ingress_api

    @admin.display(description="outcome", ordering="outcome")
    def outcome_status(self, obj):
        return format_html('{} <span class="gh-quiet">{}</span>', obj.get_outcome_display(), obj.http_status)


@admin.register(UsageRecord)
class UsageRecordAdmin(RequestColumns, ReadOnly, admin.ModelAdmin):
    # Fits 1024 px beside the filters (tests/browser/test_admin_screens.py): related values share a column (project
    # and key, model and upstream, API and streaming, outcome and HTTP status); a request id is cut on screen (the
    # whole id on hover and on its page); below 1200 px the API column gives way (templates/admin/base_site.html).
    list_display = ("created_at", "request", "project_key", "model_upstream", "api", "outcome_status", "input_tokens",
                    "output_tokens", "cost", "latency_ms")  # fmt: skip
    list_filter = (CreatedRangeFilter, "outcome", AliasFilter, IngressFilter, ProviderNameFilter, StreamFilter,
                   "project")
    list_select_related = ("project", "api_key__project")  # the key is labelled with its project (ApiKey.__str__)
    search_fields = ("=request_id",)  # get_search_results below decides what a term matches
    search_help_text = (
        "An exact request id (the x-request-id / request-id response header), a Claude Code session id (its "
        "requests), or a model alias or part of one (when several aliases match, the newest 2,000 of their "
        "requests in the chosen dates)."
    )
    date_hierarchy = "created_at"  # drawn by LedgerChangeList.date_navigation (change_list.html override)
    paginator = LedgerPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts are COUNT queries over the ledger
    list_per_page = 100
    SORT_WINDOW = timedelta(days=1)  # sorting by other columns sorts every row in the window
    SEARCH_ALIASES = 1000
    SEARCH_ROWS = 2000  # rows listed for a search matching several aliases (20 pages)

    def get_changelist(self, request, **kwargs):
        return LedgerChangeList

    def get_urls(self):
        from django.urls import path

        from .live import live_view

        live = path("live/", self.admin_site.admin_view(live_view(self)), name="usage_live")
        return [live, *super().get_urls()]

    def get_sortable_by(self, request):
        if self._narrowed_to_a_day(request.GET):
            return super().get_sortable_by(request)
        return ("created_at",)

    def _narrowed_to_a_day(self, params) -> bool:
        try:
            picked = created_range(params.get("created"), params.get("created_from", ""), params.get("created_to", ""))
        except ValueError:
            return False
        ranges = [picked, hierarchy_range(params)]
        start = max((s for s, _ in ranges if s), default=None)
        end = min((e for _, e in ranges if e), default=None)
        if start and not end:
            end = timezone.now()
        return bool(start and end and end - start <= self.SORT_WINDOW)

    def get_search_results(self, request, queryset, search_term):
        """A gateway request id (req_…) matches that one row (index on request_id). Anything else is looked for
        among the ledger's model aliases (case-insensitive, part of a name is enough), and the rows of the
        matching aliases are listed (index on (alias, created_at)). No match: an exact request id after all."""
        term = search_term.strip()
        if not term:
            return queryset, False
        if SESSION_ID.fullmatch(term):  # index on session_id
            return queryset.filter(session_id=term), False
        if not term.startswith("req_"):
            needle = term.casefold()
            aliases = [a for a in ledger_aliases(self.SEARCH_ALIASES) if needle in a.casefold()]
            if aliases:
                return self._rows_of_aliases(request, queryset, aliases), False
        return queryset.filter(request_id=term), False

    def _rows_of_aliases(self, request, queryset, aliases):
        if len(aliases) == 1:
            return queryset.filter(alias=aliases[0])
        if self._narrowed_to_a_day(request.GET):  # the day bounds the rows to sort, in any order
            return queryset.filter(alias__in=aliases)
        # `alias IN (…) ORDER BY created_at` sorts every row of every matching alias. Unless narrowed to a day,
        # the list is in time order: take the first SEARCH_ROWS rows of each alias in that order (a range read on
        # (alias, created_at) each), keep the first SEARCH_ROWS of those, and sort only them. Older rows are a
        # date range (or a single alias, from the filter) away.
        cap = self.SEARCH_ROWS
        direction = "ASC" if self._oldest_first(request) else "DESC"
        order = ("created_at", "id") if direction == "ASC" else ("-created_at", "-id")
        parts, params = [], []
        for alias in aliases:
            rows = queryset.filter(alias=alias).order_by(*order).values_list("id", "created_at")[:cap]
            sql, part_params = rows.query.sql_with_params()
            parts.append(f"SELECT * FROM ({sql}) AS part{len(parts)}")
            params += part_params
        first = (f"SELECT id FROM ({' UNION ALL '.join(parts)}) AS matched "
                 f"ORDER BY created_at {direction}, id {direction} LIMIT {cap}")  # fmt: skip
        return queryset.filter(pk__in=RawSQL(first, params))

    def _oldest_first(self, request) -> bool:
        columns = list(self.get_list_display(request))
        if self.get_actions(request):  # as ChangeList numbers them
            columns.insert(0, "action_checkbox")
        return request.GET.get(ORDER_VAR, "").split(".")[0] == str(columns.index("created_at"))

    @admin.display(description="cost", ordering="cost_usd")
    def cost(self, obj):
        return usd_html(obj.cost_usd)  # cents, the exact amount on hover and on the record's page (usage/money.py)

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "request_log")

    def get_fields(self, request, obj=None):
        fields = [f for f in super().get_fields(request, obj) if f != "request_log"]
        return [*fields[:2], "request_log", *fields[2:]]  # next to the request id

    @admin.display(description="request log")
    def request_log(self, obj):
        """The request's log page, if its project keeps them (proxy/admin_request_logs.py finds it by id)."""
        url = reverse("admin:usage_requestlog_by_request", args=[obj.request_id])
        return format_html('<a href="{}">Open the request log</a> (projects that keep them)', url)

    @admin.display(description="model → upstream", ordering="alias")
    def model_upstream(self, obj):
        if not obj.provider:
            return obj.alias or "—"
        where = f"{obj.provider}/{obj.account}" if obj.account else obj.provider
        return format_html('{}<br><span class="gh-quiet gh-small">{}:{}</span>', obj.alias or "—", where,
                           obj.remote_model)  # fmt: skip


from . import admin_bills  # noqa: E402,F401  bill sources (usage/admin_bills.py)
