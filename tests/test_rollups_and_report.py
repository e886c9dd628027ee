"""Exact cost, daily rollups, retention, the finance report and the admin dashboard (issue 9), on the suite's
database (SQLite, or PostgreSQL with DATABASE_URL). The real-server reconciliation is tests/e2e/test_reconciliation.py,
Celery tests/e2e/test_rollup_celery.py, the browser tests/browser/test_finance_report_browser.py."""

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import keys
from accounts.models import Project
from bench import synthetic
from usage import pricing, report, selectors, services
from tests.test_admin_query_plans import ledger_scans
from usage.models import DailyRollup, ModelPrice, RolledDay, UsageRecord

pytestmark = pytest.mark.django_db
D = Decimal


def _row(when: datetime, *, project=None, key=None, model="m-1", cost="0.00100000", outcome="ok", **extra):
    return UsageRecord.objects.create(
        created_at=when, request_id=f"req_{when.timestamp()}_{UsageRecord.objects.count()}", project=project,
        api_key=key, alias=extra.pop("alias", "alias-1"), remote_model=model, provider=extra.pop("provider", "p-1"),
        ingress_api="anthropic", http_status=200 if outcome == "ok" else 500, outcome=outcome, cost_usd=D(cost),
        **extra,
    )  # fmt: skip


def _at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=hour)


@pytest.fixture
def team():
    project = Project.objects.create(slug="fin-team", name="Fin team", monthly_budget_usd=D("10.00"))
    key, _ = keys.key_create(project=project, name="laptop")
    return project, key


# --- pricing ----------------------------------------------------------------------------------------------


def test_cost_prices_each_token_kind_once_with_one_hour_writes_and_batch_discount():
    price = pricing.Rates(input=D("3"), output=D("15"), cache_read=D("0.3"), cache_write=D("3.75"),
                          cache_write_1h=D("6"), batch_discount=D("0.5"))  # fmt: skip
    plain = pricing.cost(input_tokens=1000, output_tokens=200, cache_read=10_000, cache_write=0, price=price)
    assert plain == D("0.00900000")  # 0.003 + 0.003 + 0.003
    split = pricing.cost(input_tokens=0, output_tokens=0, cache_read=0, cache_write=3000, cache_write_1h=1000,
                         price=price)  # fmt: skip
    assert split == D("0.01350000")  # 2000 × 3.75 + 1000 × 6, per million
    assert pricing.cost(input_tokens=1000, output_tokens=200, cache_read=10_000, cache_write=0, price=price,
                        batch=True) == D("0.00450000")  # fmt: skip
    no_1h_rate = pricing.Rates(input=D(0), output=D(0), cache_read=D(0), cache_write=D("3.75"))
    assert pricing.cost(input_tokens=0, output_tokens=0, cache_read=0, cache_write=1000, cache_write_1h=1000,
                        price=no_1h_rate) == D("0.00375000")  # fmt: skip
    assert pricing.cost(input_tokens=7, output_tokens=7, cache_read=0, cache_write=0, price=None) == D("0E-8")
    # one token at $0.000001/Mtok is below the quantum: rounds half-even to zero, never to a float artefact
    tiny = pricing.Rates(input=D("0.000001"), output=D(0), cache_read=D(0), cache_write=D(0))
    assert pricing.cost(input_tokens=1, output_tokens=0, cache_read=0, cache_write=0, price=tiny) == D(0)


def test_price_change_applies_from_its_day_and_old_rows_keep_their_cost(team):
    project, key = team
    today = timezone.localdate()
    old_day, new_day = today - timedelta(days=6), today - timedelta(days=2)
    ModelPrice.objects.create(model="m-1", input_per_mtok=2, output_per_mtok=8, effective_from=today - timedelta(days=30))
    tokens = {"input_tokens": 100_000, "output_tokens": 10_000}

    def priced(day):
        price = pricing.rates(pricing.price_on("m-1", day))
        cost = pricing.cost(input_tokens=100_000, output_tokens=10_000, cache_read=0, cache_write=0, price=price)
        return _row(_at(day), project=project, key=key, cost=cost, **tokens)

    old = priced(old_day)
    assert old.cost_usd == D("0.28000000")
    ModelPrice.objects.create(model="m-1", input_per_mtok=1, output_per_mtok=4, effective_from=today - timedelta(days=3))
    new = priced(new_day)
    assert new.cost_usd == D("0.14000000")
    old.refresh_from_db()
    assert old.cost_usd == D("0.28000000")  # the ledger is never re-priced
    services.rollup_since(old_day)
    assert DailyRollup.objects.get(day=old_day).cost_usd == D("0.28000000")
    assert DailyRollup.objects.get(day=new_day).cost_usd == D("0.14000000")
    shown = report.finance_report(report.Query(first=old_day, last=new_day))
    assert shown.total.cost == D("0.42000000")


# --- rollups ------------------------------------------------------------------------------------------------


def test_rollup_is_idempotent_and_rerolls_late_rows(team):
    project, key = team
    day = timezone.localdate() - timedelta(days=2)
    for n, cost in enumerate(("0.10000001", "0.20000002", "0.30000003")):
        _row(_at(day, 8 + n), project=project, key=key, cost=cost, latency_ms=100 * (n + 1), ttft_ms=10 * (n + 1),
             input_tokens=10, output_tokens=5, cache_read_tokens=3, cache_write_tokens=2)  # fmt: skip
    _row(_at(day, 13), project=project, key=key, cost="0", outcome="upstream_error", latency_ms=900)
    _row(_at(day, 14), project=project, key=key, model="m-2", cost="0.5")
    _row(_at(day - timedelta(days=1), 23), project=project, key=key, cost="9")  # another day: not counted

    first = services.rollup_day(day)
    snapshot = sorted(DailyRollup.objects.filter(day=day).values_list(
        "model", "requests", "ok", "upstream_errors", "cost_usd", "input_tokens", "cache_read_tokens",
        "cache_write_tokens", "latency_p50_ms", "latency_p95_ms", "ttft_p50_ms"))  # fmt: skip
    assert snapshot == [
        ("m-1", 4, 3, 1, D("0.60000006"), 30, 9, 6, 200, 900, 20),
        ("m-2", 1, 1, 0, D("0.50000000"), 0, 0, 0, 0, 0, None),
    ]
    assert (first.rows, first.cost_usd) == (5, D("1.10000006"))
    services.rollup_day(day)  # again: the same rows, not twice as many
    assert sorted(DailyRollup.objects.filter(day=day).values_list(
        "model", "requests", "ok", "upstream_errors", "cost_usd", "input_tokens", "cache_read_tokens",
        "cache_write_tokens", "latency_p50_ms", "latency_p95_ms", "ttft_p50_ms")) == snapshot  # fmt: skip

    _row(_at(day, 23), project=project, key=key, cost="0.00000001")  # arrives after the night's rollup
    services.rollup_recent(3)
    late = DailyRollup.objects.get(day=day, model="m-1")
    assert (late.requests, late.cost_usd) == (5, D("0.60000007"))
    assert RolledDay.objects.get(day=day).rows == 6
    assert DailyRollup.objects.filter(day=day - timedelta(days=1)).get().cost_usd == D("9")
    with pytest.raises(ValueError, match="not over yet"):
        services.rollup_day(timezone.localdate())


def test_rollup_sums_equal_raw_sums_over_synthetic_traffic():
    end = datetime.combine(timezone.localdate(), datetime.min.time(), tzinfo=UTC)  # midnight: only past days
    synthetic.ledger_seed(3000, days=5, end=end, projects=2, keys_per_project=2, seed=7)
    services.rollup_since()
    first = timezone.localdate() - timedelta(days=5)
    raw = list(UsageRecord.objects.filter(created_at__lt=end).values_list("cost_usd", "input_tokens", "output_tokens"))
    rolled = list(DailyRollup.objects.values_list("cost_usd", "input_tokens", "output_tokens", "requests"))
    assert sum(r[3] for r in rolled) == len(raw) == 3000
    assert sum(r[0] for r in rolled) == sum(r[0] for r in raw)
    assert sum(r[1] for r in rolled) == sum(r[1] for r in raw)
    assert sum(r[2] for r in rolled) == sum(r[2] for r in raw)
    shown = report.finance_report(report.Query(first=first, last=timezone.localdate() - timedelta(days=1)))
    assert shown.total.cost == sum(r[0] for r in raw) and shown.total.requests == 3000
    by_project = {row.value: row.cost for row in shown.top_projects}
    for project_id, cost in by_project.items():
        assert cost == sum(UsageRecord.objects.filter(project_id=project_id).values_list("cost_usd", flat=True))


# --- retention ----------------------------------------------------------------------------------------------


def test_retention_deletes_only_rolled_up_days_older_than_the_setting(team):
    project, key = team
    today = timezone.localdate()
    old, recent = today - timedelta(days=40), today - timedelta(days=5)
    for day in (old, old + timedelta(days=1), recent):
        _row(_at(day), project=project, key=key, cost="1.25")
        _row(_at(day, 15), project=project, key=key, cost="0.75")
    assert services.retention_apply(0) == 0  # 0 = keep everything
    assert services.retention_apply(30) == 4
    assert not UsageRecord.objects.filter(created_at__lt=selectors.day_start(today - timedelta(days=30))).exists()
    assert UsageRecord.objects.filter(created_at__gte=selectors.day_start(recent)).count() == 2
    assert DailyRollup.objects.get(day=old).cost_usd == D("2.00000000")  # the history stays, as rollups
    assert RolledDay.objects.get(day=old + timedelta(days=1)).rows == 2
    shown = report.finance_report(report.Query(first=old, last=today))
    assert shown.total.cost == D("6.00000000") and shown.total.requests == 6


def test_retention_keeps_a_day_whose_rows_changed_under_it(team, monkeypatch):
    project, key = team
    day = timezone.localdate() - timedelta(days=50)
    _row(_at(day), project=project, key=key, cost="1")
    _row(_at(day, 13), project=project, key=key, cost="2")
    real = selectors.ledger_rollup

    def misses_a_row(d):  # as if a row committed between the rollup's read and the delete
        rows = real(d)
        if rows:
            rows[0].requests -= 1
        return rows

    monkeypatch.setattr(selectors, "ledger_rollup", misses_a_row)
    assert services.retention_apply(30) == 0
    assert UsageRecord.objects.filter(created_at__gte=selectors.day_start(day)).count() == 2  # nothing lost


# --- the report -------------------------------------------------------------------------------------------


def _finance_user(client):
    user = User.objects.create_user("fin-report", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    client.force_login(user)
    return user


def test_report_reads_rollups_for_past_days_and_raw_rows_only_for_today(client):
    synthetic.ledger_seed(4000, days=20, projects=2, keys_per_project=2, seed=3)
    today = timezone.localdate()
    Project.objects.filter(slug="platform").update(monthly_budget_usd=D("100"))  # budget burn reads this month too
    services.rollup_since(min(today - timedelta(days=20), today.replace(day=1)))
    _finance_user(client)
    url = reverse("usage:finance_report")
    params = {"from": (today - timedelta(days=19)).isoformat(), "to": today.isoformat(), "group": "model"}
    with CaptureQueriesContext(connection) as queries:
        page = client.get(url, params)
    assert page.status_code == 200
    raw = [q["sql"] for q in queries.captured_queries if "usage_usagerecord" in q["sql"]]
    assert raw, "today's rows are read from the ledger"
    for sql in raw:
        assert '"created_at" >=' in sql and today.isoformat() in sql.split('"created_at" >=', 1)[1][:40], sql
        assert not ledger_scans(sql), sql  # and its plan reads through an index, not the whole table
    rolled = [q["sql"] for q in queries.captured_queries if "usage_dailyrollup" in q["sql"]]
    assert rolled and all('"day" >=' in sql for sql in rolled)
    # the numbers on the page are the ledger's
    start = selectors.day_start(today - timedelta(days=19))
    expected = sum(UsageRecord.objects.filter(created_at__gte=start).values_list("cost_usd", flat=True))
    assert page.context["report"].total.cost == expected
    assert page.context["report"].raw_days == [today]
    data = json.loads(page.content.split(b'id="report-data" type="application/json">', 1)[1].split(b"</script>")[0])
    assert len(data["days"]) == 20 and data["spend"]


def test_report_csv_is_the_table_on_screen(client, team):
    project, key = team
    today = timezone.localdate()
    _row(_at(today - timedelta(days=1)), project=project, key=key, cost="0.12345678", input_tokens=5)
    _row(timezone.now(), project=project, key=key, model="m-2", cost="1.00000001", outcome="upstream_error")
    services.rollup_recent(1)
    _finance_user(client)
    params = {"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat(), "group": "model"}
    page = client.get(reverse("usage:finance_report"), params)
    download = client.get(reverse("usage:finance_report"), {**params, "format": "csv"})
    assert download.status_code == 200 and download["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(download.content.decode())))
    assert table[0] == ["Model", "Requests", "Errors", "Input tokens", "Output tokens", "Cache read tokens",
                        "Cache write tokens", "Cost (USD)", "Cache hits", "Saved (USD)"]  # fmt: skip
    assert table[1:] == [["m-2", "1", "1", "0", "0", "0", "0", "1.00000001", "0", "0.00000000"],
                         ["m-1", "1", "0", "5", "0", "0", "0", "0.12345678", "0", "0.00000000"],
                         ["Total", "2", "1", "5", "0", "0", "0", "1.12345679", "0", "0.00000000"]]  # fmt: skip
    for label, *_ in table[1:]:
        assert f"<td>{label}</td>".encode() in page.content


def test_report_shows_what_the_cache_and_token_reduction_saved_from_rollups_and_todays_rows(client, team):
    project, key = team
    today = timezone.localdate()
    yesterday = today - timedelta(days=1)
    _row(_at(yesterday), project=project, key=key, cost="0", outcome="cache_hit", saved_usd=D("0.25000000"))
    _row(_at(yesterday, 13), project=project, key=key, cost="0.50000000", saved_usd=D("0.10000000"), tokens_saved=9)
    _row(timezone.now(), project=project, key=key, cost="0", outcome="cache_hit", saved_usd=D("0.02000001"))
    services.rollup_recent(1)
    assert DailyRollup.objects.get(day=yesterday).saved_usd == D("0.35")  # the past day comes from its rollup
    _finance_user(client)
    params = {"from": yesterday.isoformat(), "to": today.isoformat(), "group": "project", "format": "csv"}
    table = list(csv.reader(io.StringIO(client.get(reverse("usage:finance_report"), params).content.decode())))
    head, total = table[0], table[-1]
    assert total[head.index("Cache hits")] == "2" and total[head.index("Errors")] == "0"  # a hit is no error
    assert D(total[head.index("Saved (USD)")]) == D("0.37000001") and D(total[head.index("Cost (USD)")]) == D("0.5")


def test_report_access_needs_login_staff_and_view_permission(client, team):
    url = reverse("usage:finance_report")
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    plain_staff = User.objects.create_user("staff-only", password="x", is_staff=True)
    client.force_login(plain_staff)
    assert client.get(url).status_code == 403
    client.force_login(User.objects.create_user("not-staff", password="x"))
    assert client.get(url).status_code == 302
    _finance_user(client)
    assert client.get(url).status_code == 200
    assert client.post(url).status_code == 405  # read-only
    bad = client.get(url, {"from": "yesterday"})
    assert bad.status_code == 400 and b"dates are YYYY-MM-DD" in bad.content
    assert client.get(url, {"from": "2020-01-01", "to": "2026-01-01"}).status_code == 400
    assert client.get(url, {"group": "nope"}).status_code == 400
    assert client.get(url, {"project": "x1"}).status_code == 400


def test_admin_index_shows_the_dashboard_with_spend_budget_and_health(client, team):
    from accounts.models import Provider, ProviderAccount

    project, key = team
    _row(timezone.now() - timedelta(minutes=5), project=project, key=key, cost="9.00")
    _row(timezone.now() - timedelta(minutes=4), project=project, key=key, cost="0", outcome="upstream_error")
    provider = Provider.objects.create(name="sick", kind="openai", base_url="http://127.0.0.1:9/v1")
    ProviderAccount.objects.create(provider=provider, name="a", last_error="upstream 401",
                                   last_error_at=timezone.now(), cooldown_until=timezone.now() + timedelta(minutes=5))  # fmt: skip
    _finance_user(client)
    from usage import dashboard

    dashboard.cache.delete(dashboard.CACHE_KEY)
    page = client.get(reverse("admin:index"))
    text = page.content.decode()
    assert page.status_code == 200
    assert 'id="usage-dashboard"' in text and reverse("usage:finance_report") in text
    assert '<span class="money" title="$9.00000000">$9.00</span>' in text  # cents, the exact amount on hover
    assert "90% of the monthly budget ($9.00 of $10.00)" in text  # this month against the project's budget
    assert "sick/a" in text and "cooling down" in text
    assert "/admin/accounts/provideraccount/" not in text  # Finance cannot open accounts: no link to a 403
    assert "Fin team" in text  # past its budget alert share (80 %)
    board = page.context["board"] if "board" in page.context else dashboard.dashboard()
    assert (board.hour_requests, board.hour_errors) == (2, 1)


def test_dashboard_hidden_from_staff_without_usage_permission(client):
    client.force_login(User.objects.create_user("staff-only-2", password="x", is_staff=True))
    page = client.get(reverse("admin:index"))
    assert page.status_code == 200 and b"usage-dashboard" not in page.content


# --- commands -----------------------------------------------------------------------------------------------


def test_load_prices_ships_a_catalogue_and_keeps_admin_edits(tmp_path):
    out = io.StringIO()
    call_command("load_prices", stdout=out)
    assert "added" in out.getvalue()
    sonnet = ModelPrice.objects.get(model="claude-sonnet-4-5")
    assert (sonnet.input_per_mtok, sonnet.cache_write_per_mtok, sonnet.cache_write_1h_per_mtok) == (D(3), D("3.75"), D(6))
    assert ModelPrice.objects.filter(model="deepseek-chat").count() == 2  # effective-dated history
    ModelPrice.objects.filter(pk=sonnet.pk).update(input_per_mtok=D("2.5"))  # an admin's negotiated price
    call_command("load_prices", stdout=io.StringIO())
    assert ModelPrice.objects.get(pk=sonnet.pk).input_per_mtok == D("2.5")
    call_command("load_prices", "--update", stdout=io.StringIO())
    assert ModelPrice.objects.get(pk=sonnet.pk).input_per_mtok == D(3)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"prices": [{"model": "x", "effective_from": "2025-01-01", "input_per_mtok": "3"},
                                          {"model": "y", "effective_from": "soon"}]}))  # fmt: skip
    with pytest.raises(CommandError, match=r"prices\[1\]\.effective_from"):
        call_command("load_prices", str(bad))
    assert not ModelPrice.objects.filter(model="x").exists()  # a bad file changes nothing


def test_rollup_usage_command_backfills_and_refuses_today(team):
    project, key = team
    day = timezone.localdate() - timedelta(days=10)
    _row(_at(day), project=project, key=key, cost="0.5")
    out = io.StringIO()
    call_command("rollup_usage", "--since", day.isoformat(), stdout=out)
    assert f"{day}: 1 requests, $0.50000000" in out.getvalue()
    assert DailyRollup.objects.filter(day__gte=day).count() == 1 and RolledDay.objects.filter(day__gte=day).count() == 10
    with pytest.raises(CommandError, match="not over yet"):
        call_command("rollup_usage", "--day", timezone.localdate().isoformat())
    with pytest.raises(CommandError, match="not a date"):
        call_command("rollup_usage", "--since", "last week")
