"""Numbers finance can trust (issue 26), on the suite's database (SQLite, or PostgreSQL with DATABASE_URL): budgets
each against their own spend, the forecast and runway read from rollups and raw rows, the unpriced marker, and
exact fixed-point amounts (never 0E-8) in the management API's JSON and CSV. The pages through the real server:
tests/browser/test_money_browser.py; the arithmetic alone: tests/unit/test_money_and_forecast.py."""

import logging
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django.utils import timezone
from prometheus_client import REGISTRY

from accounts import api_tokens, keys
from accounts.models import ModelRoute, Project, Provider, RouteTarget
from usage import dashboard, metrics, report, selectors, services
from usage.models import ModelPrice, UsageRecord

pytestmark = pytest.mark.django_db
EXPONENT = re.compile(r"\dE[-+]\d")


def _row(when: datetime, *, project=None, key=None, model="m-1", cost="0", tokens=100, alias="alias-1", **extra):
    return UsageRecord.objects.create(
        created_at=when, request_id=f"req_fin_{UsageRecord.objects.count()}", project=project, api_key=key,
        alias=alias, remote_model=model, provider="p-1", ingress_api="anthropic", http_status=200, outcome="ok",
        cost_usd=D(cost), input_tokens=tokens, **extra,
    )  # fmt: skip


def _at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=hour)


def _finance_user(client):
    user = User.objects.create_user(f"fin-{User.objects.count()}", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    client.force_login(user)


def _dashboard_html(client) -> str:
    dashboard.cache.delete(dashboard.CACHE_KEY)
    page = client.get(reverse("admin:index"))
    assert page.status_code == 200
    return page.content.decode()


# --- budgets, each against its own spend -------------------------------------------------------------------


def test_budget_cards_divide_each_budget_by_its_own_spend_and_show_the_rest_apart(client):
    now = timezone.now()
    budgeted = Project.objects.create(slug="budgeted", name="Budgeted", daily_budget_usd=D("20.00"))
    unbudgeted = Project.objects.create(slug="open", name="Open")
    _row(now - timedelta(minutes=3), project=budgeted, cost="2.50000000")
    _row(now - timedelta(minutes=2), project=budgeted, cost="2.50000000")
    _row(now - timedelta(minutes=1), project=unbudgeted, cost="15.00000000")
    _row(now - timedelta(minutes=1), project=None, cost="0.00420000")  # no project at all: outside every budget
    _finance_user(client)
    text = _dashboard_html(client)

    board = dashboard.dashboard()
    assert board.spend_today == D("20.00420000")
    [burn] = board.budgets
    assert (burn.label, burn.period, burn.spent, burn.budget) == ("Budgeted", "today", D("5"), D("20"))
    assert burn.percent == 25
    assert board.unbudgeted_today == D("15.00420000") and board.unbudgeted_month == D("20.00420000")
    row = re.search(r'<tr class="gh-budget">(.*?)</tr>', text, re.S).group(1)
    assert "Project Budgeted" in row and ">25%<" in row and "$5.00" in row and "$20.00" in row
    assert '<span id="dash-unbudgeted-today">$15.00 outside daily budgets</span>' in text
    # what "all of today's spend / the budgeted projects' budgets" said
    assert ">100%<" not in text and "100% of" not in text
    assert not EXPONENT.search(text)


# --- forecast and runway from the ledger ------------------------------------------------------------------

# The hand-computed example of tests/unit/test_money_and_forecast.py, as ledger rows: 10 November 2026, $40.12345678
# spent this month, the 7 full days before it 5 + 4.50 + 6.25 + 0 + 3.10000001 + 7 + 9.28345677.
TODAY = date(2026, 11, 10)
DAYS = {date(2026, 10, 31): "50", date(2026, 11, 1): "2", date(2026, 11, 3): "5", date(2026, 11, 4): "4.50",
        date(2026, 11, 5): "6.25", date(2026, 11, 7): "3.10000001", date(2026, 11, 8): "7",
        date(2026, 11, 9): "9.28345677", TODAY: "2.99"}  # fmt: skip


def test_forecast_and_runway_read_from_rollups_and_todays_rows_match_the_hand_computed_example():
    created = _at(date(2026, 10, 1))
    project = Project.objects.create(slug="fc", name="Forecast", monthly_budget_usd=D("100"), created_at=created)
    key, _ = keys.key_create(project=project, name="ci-bot")
    key.created_at = created
    key.monthly_budget_usd = D("150")
    key.save()
    for day, cost in DAYS.items():
        half = (D(cost) / 2).quantize(D("0.00000001"))  # two rows a day, so the sums are the database's
        _row(_at(day, 9), project=project, key=key, cost=str(half))
        _row(_at(day, 15), project=project, key=key, cost=str(D(cost) - half))
    for n in range(10):
        services.rollup_day(date(2026, 10, 31) + timedelta(days=n))  # past days from rollups, today raw

    burn = {(b.scope, b.period): b for b in report.budget_burn(today=TODAY)}
    f = burn[("Project", "month")].forecast
    assert burn[("Project", "month")].spent == f.spent == D("40.12345678")
    assert (f.rate, f.rate_days, f.month_end, f.runs_out) == (D("5.01906525"), 7, D("140.50476178"), date(2026, 11, 22))
    key_forecast = burn[("API key", "month")].forecast
    assert key_forecast.month_end == D("140.50476178") and key_forecast.runs_out is None  # $150: not this month
    assert burn[("API key", "month")].label == f"Forecast / ci-bot ({key.prefix}…)"  # keys named with their project
    [(name, outlook)] = report.project_outlook(today=TODAY)
    assert name == "Forecast" and outlook == f


# --- the unpriced marker --------------------------------------------------------------------------------------


@pytest.fixture
def unpriced_traffic():
    today = timezone.localdate()
    yesterday = today - timedelta(days=1)
    now = timezone.now()
    project = Project.objects.create(slug="up", name="Unpriced team")
    ModelPrice.objects.create(model="free-local", effective_from=date(2020, 1, 1))  # all rates 0, on purpose
    ModelPrice.objects.create(model="late-priced", input_per_mtok=D("1"), effective_from=today)
    _row(now - timedelta(minutes=2), project=project, model="mystery-1", alias="mystery", tokens=700)
    _row(_at(yesterday), project=project, model="mystery-1", alias="mystery", tokens=300)
    _row(now - timedelta(minutes=2), project=project, model="free-local", alias="local", tokens=900)
    _row(now - timedelta(minutes=2), project=project, model="claude-x", alias="claude", cost="0.01", tokens=50)
    _row(_at(yesterday), project=project, model="late-priced", alias="late", tokens=40)  # before its price
    _row(now - timedelta(minutes=1), project=project, model="late-priced", alias="late", cost="0.00004", tokens=40)
    _row(now - timedelta(minutes=1), project=project, model="mystery-2", alias="mystery", tokens=0)  # a failure
    return today, yesterday


def test_unpriced_models_are_those_with_tokens_at_zero_cost_and_no_price_in_force(unpriced_traffic):
    today, yesterday = unpriced_traffic
    found = {u.model: u for u in selectors.unpriced_models(yesterday, today)}
    assert set(found) == {"mystery-1", "late-priced"}
    mystery = found["mystery-1"]
    assert (mystery.requests, mystery.tokens, mystery.first_day, mystery.last_day) == (2, 1000, yesterday, today)
    assert mystery.aliases == {"mystery"}
    assert (found["late-priced"].first_day, found["late-priced"].last_day) == (yesterday, yesterday)
    assert [u.model for u in selectors.unpriced_models(today, today)] == ["mystery-1"]


def test_unpriced_marker_on_the_dashboard_the_report_and_the_routes_page(client, admin_client, unpriced_traffic):
    today, yesterday = unpriced_traffic
    _finance_user(client)
    text = _dashboard_html(client)
    assert 'id="unpriced-marker"' in text and 'data-model="mystery-1"' in text and "free-local" not in text
    page = client.get(reverse("usage:finance_report"), {"from": yesterday.isoformat(), "to": today.isoformat()})
    marker = page.content.decode().split('id="unpriced-marker"', 1)[1].split("</div>", 1)[0]
    assert 'data-model="mystery-1"' in marker and 'data-model="late-priced"' in marker
    assert "add a price" not in marker  # Finance may not add prices: no link to a 403

    provider = Provider.objects.create(name="prov", kind="openai", base_url="http://127.0.0.1:9/v1")
    mystery = ModelRoute.objects.create(alias="mystery")
    RouteTarget.objects.create(route=mystery, provider=provider, remote_model="*")
    other = ModelRoute.objects.create(alias="claude")
    route_page = admin_client.get(reverse("admin:accounts_modelroute_change", args=[mystery.pk])).content.decode()
    assert 'data-model="mystery-1"' in route_page and "late-priced" not in route_page
    assert f"{reverse('admin:usage_modelprice_add')}?model=mystery-1" in route_page  # a superuser may price it
    other_page = admin_client.get(reverse("admin:accounts_modelroute_change", args=[other.pk])).content.decode()
    assert 'id="unpriced-marker"' not in other_page


def test_an_unpriced_request_moves_the_counter_and_logs_its_model_once(caplog):
    usage = SimpleNamespace(input_tokens=12, output_tokens=3, cache_read_tokens=0, cache_write_tokens=0)
    call = SimpleNamespace(ingress="anthropic", alias="route-x", key=None, stream=False, ttft_ms=None, usage=usage,
                           price=None, remote_model="model-without-price")  # fmt: skip
    before = REGISTRY.get_sample_value("gateway_unpriced_requests_total", {"model": "route-x"}) or 0
    metrics.request_started("anthropic")
    with caplog.at_level(logging.WARNING, logger="usage.metrics"):
        for _ in range(2):
            metrics.request_finished(call, 200, "ok", D("0E-8"), 0.1)
    assert REGISTRY.get_sample_value("gateway_unpriced_requests_total", {"model": "route-x"}) == before + 2
    assert [r.getMessage() for r in caplog.records].count(
        "unpriced model 'model-without-price' (route 'route-x'): its requests are recorded at $0; add a price") == 1


# --- exact fixed point in the management API ------------------------------------------------------------------


def test_management_api_writes_exact_fixed_point_never_exponents(client):
    today = timezone.localdate()
    project = Project.objects.create(slug="zero", name="Zero", monthly_budget_usd=D("10.00"),
                                     created_at=timezone.now() - timedelta(days=3))  # fmt: skip
    _row(timezone.now() - timedelta(minutes=1), project=project, model="nothing-priced")  # a summed $0: 0E-8
    _row(_at(today - timedelta(days=1)), project=project, cost="1.50000000")
    _, secret = api_tokens.token_create(name="fin-read", scope="read")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    answers = {}
    for path, params in (("/usage", {"project": "zero", "start": today.isoformat()}),
                         ("/costs", {"project": "zero", "start": today.isoformat()}),
                         ("/costs", {"project": "zero", "start": today.isoformat(), "format": "csv"}),
                         ("/budgets", {})):  # fmt: skip
        response = client.get(f"/manage/v1{path}", params, **auth)
        assert response.status_code == 200, response.content
        assert not EXPONENT.search(response.content.decode()), (path, response.content)
        answers[(path, params.get("format"))] = response
    assert answers[("/usage", None)].json()["totals"]["cost_usd"] == "0.00000000"
    assert answers[("/costs", None)].json()["total_usd"] == "0.00000000"
    assert answers[("/costs", "csv")].content.decode().splitlines()[1].startswith("zero,1,0,100,")
    assert ",0.00000000,0.00000000" in answers[("/costs", "csv")].content.decode()

    mine = next(p for p in answers[("/budgets", None)].json()["projects"] if p["project"] == "zero")
    # the window: the 3 full days since the project was created (one of them $1.50) -> $0.50 a day
    assert mine["daily_rate_usd"] == "0.50000000" and mine["rate_days"] == 3
    days_left = (date(today.year + today.month // 12, today.month % 12 + 1, 1) - today).days - 1
    assert D(mine["month_forecast_usd"]) == D(mine["month_usd"]) + D("0.5") * days_left
    assert mine["monthly_budget_usd"] == "10.00" and mine["budget_used_up"] is False


def test_usage_records_list_shows_cost_in_cents_with_the_exact_amount_on_hover(admin_client):
    _row(timezone.now() - timedelta(minutes=1), cost="1256.20585066")
    small = _row(timezone.now() - timedelta(minutes=2), cost="0.00010500")
    _row(timezone.now() - timedelta(minutes=3), cost="0")
    text = admin_client.get(reverse("admin:usage_usagerecord_changelist")).content.decode()
    assert '<span class="money" title="$1,256.20585066">$1,256.21</span>' in text
    assert '<span class="money" title="$0.00010500">&lt;$0.01</span>' in text
    assert '<span class="money" title="$0.00000000">$0.00</span>' in text
    assert not EXPONENT.search(text)
    record = admin_client.get(reverse("admin:usage_usagerecord_change", args=[small.pk])).content.decode()
    assert "0.00010500" in record  # the record itself: the exact amount
