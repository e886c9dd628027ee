"""The finance report in a real headless Chromium against the real server (daphne): a Finance user logs in, picks
a range and a project, sees the charts drawn by the vendored Chart.js (no CDN), downloads the CSV with the
browser's own session and finds the database's totals in it. The page's screenshot goes to tmp (and to
docs/finance-report.png, the README's picture, when FINANCE_SCREENSHOT=1)."""

import base64
import csv
import io
import os
import random
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.utils import timezone

from accounts import keys
from accounts.models import Project
from tests.conftest import ROOT
from usage import pricing, services
from usage.models import DailyRollup, UsageRecord
from usage.money import cents

from .webdriver import Browser, missing

pytestmark = pytest.mark.browser
MODELS = {  # remote model: (provider, $/Mtok input, output, cache read, cache write)
    "claude-sonnet-4-5": ("anthropic-main", "3", "15", "0.3", "3.75"),
    "claude-haiku-4-5": ("anthropic-main", "1", "5", "0.1", "1.25"),
    "gpt-4.1-mini": ("openai-main", "0.4", "1.6", "0.1", "0"),
    "deepseek-chat": ("deepseek", "0.28", "0.42", "0.028", "0"),
}


@pytest.fixture
def browser(request):
    reason = missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: {reason}")
        pytest.skip(reason)
    call_command("collectstatic", "--noinput", verbosity=0)  # the server serves STATIC_ROOT, as after bin/run
    b = Browser(request.getfixturevalue("gateway_server").url, timeout=20)
    yield b
    b.quit()


@pytest.fixture
def finance_world(committed):
    """A Finance user and a project with 30 days of traffic on four models and three keys, past days rolled up."""
    tag = secrets.token_hex(3)
    password = secrets.token_urlsafe(16)
    user = User.objects.create_user(f"finance-{tag}", password=password, is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    project = Project.objects.create(slug=f"report-{tag}", name=f"Report {tag}", monthly_budget_usd=Decimal("400"))
    key_ids = [keys.key_create(project=project, name=name)[0].id for name in ("ci-bot", "alice laptop", "evals")]
    rng = random.Random(9)
    today = timezone.localdate()
    rows = []
    for back in range(29, -1, -1):
        day_start = datetime.combine(today - timedelta(days=back), datetime.min.time(), tzinfo=UTC)
        for n in range(rng.randint(12, 30)):
            model = rng.choice(list(MODELS))
            provider, *rates = MODELS[model]
            price = pricing.Rates(*map(Decimal, rates))
            tokens = {"input_tokens": rng.randint(500, 9000), "output_tokens": rng.randint(50, 2000),
                      "cache_read_tokens": rng.choice((0, rng.randint(1000, 60000))), "cache_write_tokens": 0}  # fmt: skip
            outcome = "upstream_error" if rng.random() < 0.05 else "ok"
            cost = pricing.cost(input_tokens=tokens["input_tokens"], output_tokens=tokens["output_tokens"],
                                cache_read=tokens["cache_read_tokens"], cache_write=0, price=price)  # fmt: skip
            when = day_start + timedelta(minutes=rng.randint(0, 60 * 24 - 1))
            if back == 0:
                when = min(when, timezone.now() - timedelta(seconds=5))
            rows.append(UsageRecord(created_at=when, request_id=f"req_report_{tag}_{back}_{n}", project=project,
                                    api_key_id=rng.choice(key_ids), alias=model.split("-")[0], remote_model=model,
                                    provider=provider, ingress_api="anthropic", http_status=200 if outcome == "ok" else 529,
                                    outcome=outcome, cost_usd=cost if outcome == "ok" else Decimal(0), **tokens))  # fmt: skip
    UsageRecord.objects.bulk_create(rows)
    for back in range(29, 0, -1):
        services.rollup_day(today - timedelta(days=back))
    yield user.username, password, project
    UsageRecord.objects.filter(project=project).delete()
    DailyRollup.objects.filter(project=project).delete()
    project.delete()
    user.delete()


def _js(browser, script: str, *args):
    return browser._s("POST", "/execute/sync", {"script": script, "args": list(args)})


def _js_async(browser, script: str, *args):
    return browser._s("POST", "/execute/async", {"script": script, "args": list(args)})


def test_finance_user_reads_the_report_charts_and_csv_in_a_real_browser(browser, finance_world, tmp_path):
    username, password, project = finance_world
    today = timezone.localdate()
    first = today - timedelta(days=13)

    browser.get("/admin/login/?next=/admin/reports/finance/")
    browser.type("#id_username", username)
    browser.type("#id_password", password)
    browser.submit("input[type=submit]")
    assert "Finance report" in browser.source

    # pick a range and the project, group by model
    _js(browser, "document.getElementById('id_from').value = arguments[0];"
                 "document.getElementById('id_to').value = arguments[1];", first.isoformat(), today.isoformat())  # fmt: skip
    browser.click(f"#id_project option[value='{project.pk}']")
    browser.click("#id_group option[value='model']")
    browser.submit("#report-show")
    assert f"from={first.isoformat()}" in browser.url and f"project={project.pk}" in browser.url

    # the charts are drawn: Chart.js loaded from our static files, instances made, pixels on the canvas
    drawn = _js(browser, """
        const charts = window.financeCharts || {};
        const canvas = document.getElementById('chart-spend');
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let painted = 0;
        for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) painted++; }
        return {chartjs: typeof Chart, n: Object.keys(charts).length, painted: painted,
                datasets: charts.spend ? charts.spend.data.datasets.map(d => d.label) : [],
                days: charts.spend ? charts.spend.data.labels.length : 0};""")
    assert drawn["chartjs"] == "function" and drawn["n"] == 3
    assert drawn["days"] == 14 and drawn["painted"] > 2000
    assert set(drawn["datasets"]) <= set(MODELS) and len(drawn["datasets"]) >= 3

    # the table and the CSV (downloaded with the browser's session) hold the database's totals
    rows = UsageRecord.objects.filter(project=project, created_at__gte=datetime.combine(first, datetime.min.time(), tzinfo=UTC))
    expected_cost = sum(rows.values_list("cost_usd", flat=True))
    text = _js_async(browser, """
        const done = arguments[arguments.length - 1];
        fetch(document.getElementById('report-csv').href, {credentials: 'same-origin'})
          .then(r => r.text().then(t => done(r.status + '\\n' + r.headers.get('content-type') + '\\n' + t)))
          .catch(e => done('error ' + e));""")
    status, content_type, body = text.split("\n", 2)
    assert status == "200" and content_type.startswith("text/csv")
    table = list(csv.reader(io.StringIO(body)))
    assert table[0][0] == "Model" and table[-1][0] == "Total"
    total = dict(zip(table[0][1:], table[-1][1:], strict=True))
    assert Decimal(total["Cost (USD)"]) == expected_cost
    assert int(total["Requests"]) == rows.count()
    assert int(total["Errors"]) == rows.exclude(outcome="ok").count()
    cost = table[0].index("Cost (USD)")
    assert sum(Decimal(r[cost]) for r in table[1:-1]) == expected_cost
    assert {r[0] for r in table[1:-1]} == set(rows.values_list("remote_model", flat=True))
    assert browser.text("#total-cost") == cents(expected_cost)  # cents on the page, exact in the CSV

    browser._s("POST", "/window/rect", {"width": 1400, "height": 1700})
    png = base64.b64decode(browser._s("GET", "/screenshot"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    (tmp_path / "finance-report.png").write_bytes(png)
    if os.environ.get("FINANCE_SCREENSHOT"):
        Path(ROOT / "docs").mkdir(exist_ok=True)
        (ROOT / "docs" / "finance-report.png").write_bytes(png)


def test_anonymous_and_plain_staff_cannot_open_the_report(browser, committed):
    browser.get("/admin/reports/finance/")
    assert "/admin/login/" in browser.url  # the admin's login first
    tag = secrets.token_hex(3)
    password = secrets.token_urlsafe(16)
    user = User.objects.create_user(f"staff-{tag}", password=password, is_staff=True)
    try:
        browser.type("#id_username", user.username)
        browser.type("#id_password", password)
        browser.submit("input[type=submit]")
        assert "403" in browser.source or "Forbidden" in browser.source
        assert 'id="report-table"' not in browser.source
    finally:
        user.delete()
