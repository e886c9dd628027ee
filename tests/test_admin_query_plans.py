"""Every admin page stays fast however large the ledger grows: no query a page runs may read the whole
usage_usagerecord table. Each page is opened as a superuser over a few thousand synthetic rows, its queries are
captured, and each one that touches the ledger is EXPLAINed: SQLite's plan must not say `SCAN usage_usagerecord`
without an index; PostgreSQL's (with sequential scans disabled, so the plan shows whether an index *can* serve
the query even where a seq scan is cheaper on a small table) must not say `Seq Scan on usage_usagerecord`.
Plans, not timings: bench/admin_pages.py times the same pages at millions of rows."""

import json
import re
from datetime import timedelta

import pytest
from django.contrib import admin
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiKey, ModelRoute, Project, Provider, ProviderAccount, RouteTarget
from bench import synthetic
from usage.models import ModelPrice, UsageRecord

pytestmark = pytest.mark.django_db

LEDGER = UsageRecord._meta.db_table
ROWS = 3000


@pytest.fixture
def ledger():
    synthetic.ledger_seed(ROWS, days=400, projects=3, keys_per_project=2, seed=15)
    # Just after midnight "today" is minutes old and 3000 rows over 400 days leave it empty: seed today too, so the
    # day filters have something to find at any hour.
    today_so_far = (timezone.now() - timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0))
    synthetic.ledger_seed(30, days=max(today_so_far.total_seconds(), 120) / 86400, projects=3, keys_per_project=2, seed=16)
    if connection.vendor == "postgresql":
        _as_if_millions()
    route = ModelRoute.objects.create(alias="sonnet")
    RouteTarget.objects.create(route=route, provider=Provider.objects.get(name="anthropic-main"),
                               remote_model="claude-sonnet-4-5")  # fmt: skip
    record = UsageRecord.objects.filter(outcome="ok").order_by("-created_at").first()
    return {
        "record": record,
        "project": Project.objects.get(pk=record.project_id),
        "key": ApiKey.objects.get(pk=record.api_key_id),
        "provider": Provider.objects.get(name=record.provider),
        "account": ProviderAccount.objects.get(provider__name=record.provider, name=record.account),
        "route": route,
        "price": ModelPrice.objects.get(model=record.remote_model),
    }


def _as_if_millions() -> None:
    """Plan as for a ledger of millions of rows: statistics (ANALYZE, as autovacuum keeps them), then the row count
    scaled up a thousandfold. Without statistics the planner guesses the row count from the table's width, so
    every column added would move the plans of a few thousand rows."""
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {LEDGER}")
        cursor.execute(f"UPDATE pg_class SET reltuples = reltuples * 1000 WHERE oid = '{LEDGER}'::regclass")


def ledger_scans(sql: str) -> list[str]:
    """What in the plan of `sql` (as the test client ran it) reads the whole ledger table: a scan of the table
    or a walk through a whole index, unless it is a bounded read (a LIMIT on rows read in order as they come,
    no condition the scan does not serve, nothing sorted or grouped in between)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET enable_seqscan = off")
            try:
                cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
                plan = cursor.fetchone()[0]
            finally:
                cursor.execute("RESET enable_seqscan")
            plan = plan if isinstance(plan, list) else json.loads(plan)
            return list(_pg_full_reads(plan[0]["Plan"], under_limit=False))
        cursor.execute("EXPLAIN QUERY PLAN " + sql)
        plan = [row[-1] for row in cursor.fetchall()]
    # Django names the ledger's copies in subqueries U0, U1…: those are the ledger too.
    names = "|".join({LEDGER} | set(re.findall(rf'"{LEDGER}"\s+(?:AS\s+)?"?(U\d+)"?', sql)))
    bounded = (re.search(r"\bLIMIT\b", sql)
               and not re.search(r"\bWHERE\b|\bGROUP BY\b|\bDISTINCT\b|\b(COUNT|SUM|AVG|MIN|MAX|TOTAL)\(", sql)
               and not any(re.search(r"TEMP B-TREE FOR (ORDER BY|GROUP BY|DISTINCT)", line) for line in plan))
    return [line for line in plan if re.match(rf"SCAN ({names})\b", line) and not bounded]  # fmt: skip


STREAMING = {"Limit", "Incremental Sort", "Subquery Scan", "Result", "Append", "Merge Append", "Gather Merge",
             "Memoize", "Materialize", "Unique"}  # fmt: skip


def _pg_full_reads(node: dict, under_limit: bool):
    """A Seq Scan of the ledger, or an index scan with no Index Cond that does not stream into a Limit (through
    nodes that pass rows on as they come) or that filters what it reads."""
    kind = node["Node Type"]
    if node.get("Relation Name") == LEDGER:
        if kind in ("Seq Scan", "Parallel Seq Scan", "Sample Scan", "Tid Range Scan"):
            yield f"{kind} on {LEDGER}"
        elif kind in ("Index Scan", "Index Only Scan") and "Index Cond" not in node and not (
            under_limit and "Filter" not in node
        ):
            yield f"{kind} using {node.get('Index Name')} on {LEDGER}, whole index"
    streams = kind in STREAMING and (under_limit or kind == "Limit")
    for position, child in enumerate(node.get("Plans", ())):
        outer = kind == "Nested Loop" and position == 0 and under_limit
        yield from _pg_full_reads(child, streams or outer)


def ledger_queries(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if LEDGER in q["sql"]]


def assert_no_ledger_scan(client, path):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, (path, response.status_code, response.get("Location"))
    scans = {sql: lines for sql in ledger_queries(captured) if (lines := ledger_scans(sql))}
    assert not scans, f"{path} reads the whole ledger:\n" + "\n\n".join(f"{s}\n  -> {p}" for s, p in scans.items())
    return response, ledger_queries(captured)


def test_the_check_sees_a_full_scan(ledger):
    rows = UsageRecord.objects.values_list("id", flat=True)
    unindexed = [rows.filter(user_agent__contains="curl"), rows.filter(user_agent="curl").order_by("-created_at"),
                 rows.filter(user_agent="curl").order_by("-created_at")[:100], rows.order_by("-created_at")]
    with CaptureQueriesContext(connection) as captured:
        for query in unindexed:
            list(query)
    for sql in ledger_queries(captured):
        assert ledger_scans(sql), f"the plan check must flag {sql}"
    with CaptureQueriesContext(connection) as captured:
        list(rows.order_by("-cost_usd")[:100])
        list(rows.values("alias").annotate(n=Count("id")).order_by()[:10])
    for sql in ledger_queries(captured):
        assert ledger_scans(sql), f"the plan check must flag {sql}"
    with CaptureQueriesContext(connection) as captured:
        list(rows.order_by("-created_at")[:100])
        list(rows.order_by()[:100])
        list(rows.filter(outcome="ok").order_by("-created_at")[:100])
    for sql in ledger_queries(captured):
        assert not ledger_scans(sql), f"the plan check must accept {sql}"


def usage_list(**query) -> str:
    path = reverse("admin:usage_usagerecord_changelist")
    return path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def ledger_list_pages(ledger) -> dict[str, str]:
    today = timezone.localdate()
    record = ledger["record"]
    newest = timezone.localtime(record.created_at)
    cost_column = ledger_columns().index("cost")
    pages = {
        "plain": usage_list(),
        "page 2": usage_list(p=2),
        "oldest first": usage_list(o=0),
        **{f"outcome {o}": usage_list(outcome__exact=o) for o, _ in UsageRecord.OUTCOMES},
        "alias": usage_list(alias=record.alias),
        "ingress": usage_list(ingress_api="openai"),
        "provider": usage_list(provider=record.provider),
        "stream yes": usage_list(stream__exact=1),
        "stream no": usage_list(stream__exact=0),
        "project": usage_list(project__id__exact=record.project_id),
        "no project": usage_list(project__isnull="True"),
        "key": usage_list(api_key__id__exact=record.api_key_id),
        **{f"range {r}": usage_list(created=r) for r in ("today", "yesterday", "7d", "30d", "month", "last_month")},
        "from-to": usage_list(created_from=today - timedelta(days=20), created_to=today - timedelta(days=10)),
        "from only": usage_list(created_from=today - timedelta(days=3)),
        "to only": usage_list(created_to=today - timedelta(days=3)),
        "range and outcome": usage_list(created="30d", outcome__exact="upstream_error"),
        "range and project": usage_list(created="7d", project__id__exact=record.project_id),
        "filters combined": usage_list(outcome__exact="ok", stream__exact=1, ingress_api="anthropic",
                                       provider="anthropic-main", created="month"),  # fmt: skip
        "search request id": usage_list(q=record.request_id),
        "search alias part": usage_list(q=record.alias[:3]),
        "search aliases": usage_list(q="s"),
        "search nothing": usage_list(q="no-such-thing"),
        "year": usage_list(created_at__year=newest.year),
        "month": usage_list(created_at__year=newest.year, created_at__month=newest.month),
        "day": usage_list(created_at__year=newest.year, created_at__month=newest.month, created_at__day=newest.day),
        "day sorted by cost": usage_list(created="today", o=f"-{cost_column}"),
        "day sorted by project": usage_list(created_at__year=newest.year, created_at__month=newest.month,
                                            created_at__day=newest.day, o=ledger_columns().index("project_key")),
        "stale sort, no range": usage_list(o=f"-{cost_column}"),
        "month and outcome": usage_list(created_at__year=newest.year, created_at__month=newest.month,
                                        outcome__exact="ok"),  # fmt: skip
    }
    return pages


def ledger_columns() -> list[str]:
    return list(admin.site._registry[UsageRecord].list_display)


def test_ledger_list_pages_read_through_indexes(admin_client, ledger):
    for name, path in ledger_list_pages(ledger).items():
        response, queries = assert_no_ledger_scan(admin_client, path)
        assert queries, f"{name}: the page did not read the ledger at all"
        assert len(queries) <= 8, f"{name}: {len(queries)} ledger queries"
        assert "cl" in response.context, name


def test_ledger_list_still_finds_what_it_should(admin_client, ledger):
    record = ledger["record"]
    found = admin_client.get(usage_list(q=record.request_id)).context["cl"]
    assert [r.pk for r in found.result_list] == [record.pk]
    by_alias = admin_client.get(usage_list(q=record.alias.upper()[:4])).context["cl"]
    assert by_alias.result_list and all(record.alias[:4] in r.alias for r in by_alias.result_list)
    several = [a for a in UsageRecord.objects.values_list("alias", flat=True).distinct() if "s" in a]
    assert len(several) > 1
    matching = UsageRecord.objects.filter(alias__in=several)
    newest = admin_client.get(usage_list(q="s")).context["cl"].result_list
    assert newest[0] == matching.order_by("-created_at", "-id").first() and {r.alias for r in newest} <= set(several)
    oldest = admin_client.get(usage_list(q="s", o=ledger_columns().index("created_at"))).context["cl"].result_list
    assert oldest[0] == matching.order_by("created_at", "id").first()
    today = admin_client.get(usage_list(created="today")).context["cl"]
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    assert today.result_list and all(r.created_at >= start for r in today.result_list)
    day = timezone.localdate() - timedelta(days=5)
    picked = admin_client.get(usage_list(created_from=day, created_to=day)).context["cl"]
    assert picked.result_list and {timezone.localdate(r.created_at) for r in picked.result_list} == {day}
    assert picked.result_count == UsageRecord.objects.filter(created_at__date=day).count()


def test_a_bad_date_is_refused_like_any_bad_filter(admin_client, ledger):
    for query in ({"created_from": "yesterday"}, {"created": "fortnight"}):
        response = admin_client.get(usage_list(**query))
        assert response.status_code == 302 and response["Location"].endswith("?e=1")


def test_ledger_sorts_by_any_column_within_a_day_only(admin_client, ledger):
    cost = ledger_columns().index("cost")
    unbounded = admin_client.get(usage_list(o=f"-{cost}"))
    assert "o=" not in unbounded.context["cl"].get_query_string()  # ignored: newest first
    assert "one day" in unbounded.content.decode()
    times = [r.created_at for r in unbounded.context["cl"].result_list]
    assert times == sorted(times, reverse=True)
    within = admin_client.get(usage_list(created="today", o=f"-{cost}")).context["cl"]
    costs = [r.cost_usd for r in within.result_list]
    assert costs and costs == sorted(costs, reverse=True)


def test_date_navigation_lists_years_months_and_days_without_reading_every_row(admin_client, ledger):
    first = timezone.localtime(UsageRecord.objects.order_by("created_at").first().created_at)
    last = timezone.localtime(ledger["record"].created_at)
    html = admin_client.get(usage_list()).content.decode()
    for year in range(first.year, last.year + 1):
        assert f"created_at__year={year}" in html
    html = admin_client.get(usage_list(created_at__year=last.year, created_at__month=last.month)).content.decode()
    assert f"created_at__day={last.day}" in html and "date-back" in html


def detail_pages(ledger) -> dict[str, str]:
    pages = {"admin index": reverse("admin:index")}
    for model in admin.site._registry:
        meta = model._meta
        pages[f"{meta.label} list"] = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
    for name, obj in ledger.items():
        meta = obj._meta
        pages[f"{meta.label} detail"] = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
    pages["project delete"] = reverse("admin:accounts_project_delete", args=[ledger["project"].pk])
    pages["key delete"] = reverse("admin:accounts_apikey_delete", args=[ledger["key"].pk])
    pages["project list searched"] = reverse("admin:accounts_project_changelist") + "?q=" + ledger["project"].slug
    pages["key list by project"] = (reverse("admin:accounts_apikey_changelist") +
                                    f"?project__id__exact={ledger['project'].pk}")  # fmt: skip
    return pages


def test_every_other_admin_page_reads_the_ledger_through_indexes(admin_client, ledger):
    for name, path in detail_pages(ledger).items():
        assert_no_ledger_scan(admin_client, path)
