"""Every admin page in a real headless Chromium at 1440 and 1024 px, over a small team's data (bench.synthetic: three
projects that each have a "ci-bot" key, 45 days of traffic, four providers; a provider served by the fake upstream,
a batch, an audit trail with long diffs): the index with its dashboard, each model's list and a change form, the
finance report, the live feed with a row pushed by a real request, and a batch's page opened through the list's own
link. On each page: nothing wider than the window (the page, and every table cell: a column scrolled out of a table's
own box counts), no number in exponent notation, and a PNG of the whole page kept in test-artifacts/admin-screens/
(TEST_ARTIFACTS moves it) for a person to look at."""

import os
import re
import secrets
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from tests.conftest import ROOT
from tests.e2e import policy_world as pw
from tests.e2e.conftest import FAKE_KEY
from tests.fakes.upstream import FakeUpstream

from .webdriver import Browser, require

pytestmark = pytest.mark.browser
WIDTHS = (1440, 1024)
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS") or ROOT / "test-artifacts") / "admin-screens"
EXPONENT = re.compile(r"(?<![\w.])\d+(?:\.\d+)?E[-+]\d+\b")  # as Decimal writes them: 0E-8, 1.5E+3
MODELS = sorted(f"{m._meta.app_label}.{m._meta.model_name}" for m in admin.site._registry)

# What a page is measured by: the page's own width, every visible table cell's right edge (past the window, or past
# the box that scrolls the table: off-screen either way), the text as a person reads it.
MEASURE = """
const width = window.innerWidth, problems = [];
const page = document.documentElement.scrollWidth;
if (page > width) problems.push(`the page is ${page} px wide`);
function visibleRight(element) {  // the window's edge, or a nearer box that scrolls or clips what overflows it
  let right = width;
  for (let box = element.parentElement; box; box = box.parentElement) {
    if (getComputedStyle(box).overflowX !== "visible") {
      right = Math.min(right, box.getBoundingClientRect().left + box.clientLeft + box.clientWidth);
    }
  }
  return right;
}
for (const cell of document.querySelectorAll("th, td")) {
  const box = cell.getBoundingClientRect();
  if (!cell.offsetParent || !box.width || getComputedStyle(cell).visibility === "hidden") continue;  // not shown
  if (cell.closest(".visually-hidden")) continue;  // for screen readers only
  if (box.right <= visibleRight(cell) + 1) continue;
  const table = cell.closest("table");
  const where = (table && (table.id || table.className)) || "a table";
  problems.push(`${where}: "${cell.innerText.trim().slice(0, 40)}" (${cell.className}) ends at ${Math.round(box.right)} px`);
}
for (const table of document.querySelectorAll("table")) {  // a table wider than the box it sits in
  const box = table.getBoundingClientRect(), parent = table.parentElement.getBoundingClientRect();
  if (table.offsetParent && box.width && !table.closest(".visually-hidden") && box.right > parent.right + 1) {
    problems.push(`${table.id || table.className || "a table"} is ${Math.round(box.right - parent.right)} px wider than its box`);
  }
}
const widths = {};
for (const cell of document.querySelectorAll("#result_list thead th")) {
  widths[[...cell.classList].find(c => c.startsWith("column-")) || cell.innerText.trim()] = cell.getBoundingClientRect().width;
}
return {problems: problems.slice(0, 8), text: document.body.innerText, widths: widths};
"""


@pytest.fixture(scope="module")
def fake():
    with FakeUpstream(key=FAKE_KEY) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def team(gateway_server, fake, django_db_blocker):
    """Committed rows (the server sees them), every one removed afterwards."""
    with django_db_blocker.unblock():
        before = _high_water()
        world = _seed(gateway_server.url, fake)
        yield world
        _remove_since(before)
        world["user"].delete()


@pytest.fixture(scope="module")
def browser(team, gateway_server):
    require()
    call_command("collectstatic", "--noinput", verbosity=0)  # the server serves STATIC_ROOT, as after bin/run
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nadmin screenshots: {ARTIFACTS}")
    b = Browser(gateway_server.url, timeout=20)
    b.get("/admin/login/?next=/admin/")
    b.type("#id_username", team["user"].username)
    b.type("#id_password", team["password"])
    b.submit("input[type=submit]")
    yield b
    b.quit()


def _high_water() -> dict:
    from django.db.models import Max

    return {model: model.objects.aggregate(m=Max("pk"))["m"] or 0 for model in _int_keyed()}


def _int_keyed():
    from accounts.models import AuditEvent, ManagementToken, ModelRoute, Project, Provider
    from usage.models import ModelPrice, RequestLog, UsageRecord

    # deleted in order; bill sources and lines go with their provider's accounts
    return (RequestLog, UsageRecord, AuditEvent, ManagementToken, ModelPrice, ModelRoute, Provider, Project)


def _remove_since(before: dict) -> None:
    for model in _int_keyed():  # projects last: their keys, batches and files go with them
        model.objects.filter(pk__gt=before[model]).delete()


def _seed(url: str, fake) -> dict:
    from accounts import api_tokens
    from accounts.models import ApiKey, AuditEvent, Provider, ProviderAccount
    from batches.models import Batch, BatchFile, BatchItem
    from bench import synthetic

    password = secrets.token_urlsafe(16)
    user = User.objects.create_superuser(f"screens-{secrets.token_hex(4)}", password=password)
    synthetic.ledger_seed(600, days=45, projects=3, keys_per_project=3, seed=26)
    today_so_far = (timezone.now() - timezone.localtime().replace(hour=0, minute=0, second=0)).total_seconds()
    synthetic.ledger_seed(40, days=max(today_so_far, 600) / 86400, projects=3, keys_per_project=3, seed=27)
    # An upstream that answers (the fake): a route, a key, a request for the live feed and the "Test connection".
    alias, secret, provider = pw.served_route(url, fake, ("main", None, 0, 1), ("spare", "sk-refused", 1, 1),
                                              kind="anthropic", model="fake-claude")  # fmt: skip
    Provider.objects.filter(name="anthropic-main").update(enabled=True)  # no route names it: nothing is sent there
    ProviderAccount.objects.filter(provider__name="anthropic-main", name="backup").update(
        last_error="HTTP 401: {\"type\":\"error\",\"error\":{\"type\":\"authentication_error\",\"message\":"
                   "\"invalid x-api-key\"}} after the credential was rotated upstream without telling anyone",
        last_error_at=timezone.now() - timedelta(minutes=7), cooldown_until=timezone.now() + timedelta(minutes=20))  # fmt: skip
    api_tokens.token_create(name="ci deploy", scope="write")
    key = ApiKey.objects.select_related("project").order_by("-id").first()
    files = BatchFile.objects.create(id=f"file_{secrets.token_hex(12)}", project=key.project, purpose="batch",
                                     filename="nightly_evals_2026-12-07.jsonl", bytes=48213, storage_name="x")  # fmt: skip
    batch = Batch.objects.create(id=f"msgbatch_{secrets.token_hex(12)}", kind="anthropic", project=key.project,
                                 api_key=key, ingress_api="anthropic", total=4, input_file=files,
                                 in_progress_at=timezone.now(), expires_at=timezone.now() + timedelta(hours=24))  # fmt: skip
    for seq, status in enumerate(("succeeded", "errored", "succeeded", "pending")):
        errored = status == "errored"
        BatchItem.objects.create(
            batch=batch, seq=seq, custom_id=f"eval_case_{seq:04d}_long_identifier", body={}, status=status,
            status_code=400 if errored else (200 if status == "succeeded" else None),
            error_type="invalid_request_error" if errored else "",
            error_message="messages.1.content: Input should be a valid list; the item was sent as a string " * 2
            if errored else "", request_id=f"req_{secrets.token_hex(13)}" if status != "pending" else "")  # fmt: skip
    AuditEvent.objects.create(
        actor=user.username, user=user, source="admin", action="change", object_type="accounts.provider",
        object_id=str(provider.pk), object_repr=provider.name,
        changes={"base_url": ["https://api.anthropic.com", "https://anthropic-proxy.internal.example.com/v1"],
                 "capabilities": [None, {"images": True, "reasoning_echo": False, "max_tokens_param": "max_tokens"}],
                 "read_timeout": [600, 120], "extra_headers": [{}, {"anthropic-beta": "prompt-caching-2024-07-31"}]})
    _seed_bills_and_logs(key)
    return {"user": user, "password": password, "alias": alias, "secret": secret, "provider": provider,
            "batch": batch}  # fmt: skip


def _seed_bills_and_logs(key) -> None:
    """A provider's bill with one line over tolerance (usage/reconcile.py), and a request log (metadata only)."""
    from decimal import Decimal

    from accounts.models import ProviderAccount
    from usage.models import BillLine, BillSource, RequestLog

    account = ProviderAccount.objects.select_related("provider").get(provider__name="anthropic-main", name="backup")
    BillSource.objects.create(account=account, kind="csv")
    BillLine.objects.create(day=timezone.localdate(), account=account, provider_name=account.provider.name,
                            account_name=account.name, model="claude-sonnet-4-5", source="csv",
                            bill_input_tokens=1_250_000, bill_output_tokens=48_000, bill_cost_usd=Decimal("4.47"),
                            ledger_requests=312, ledger_input_tokens=1_200_000, ledger_output_tokens=48_000,
                            ledger_cost_usd=Decimal("4.32000000"), over_tolerance=True)  # fmt: skip
    RequestLog.objects.create(request_id=f"req_{secrets.token_hex(12)}", project=key.project, api_key=key,
                              model="claude-sonnet-4-5", ingress_api="anthropic", http_status=200, outcome="ok",
                              meta={"tools": ["Read", "Edit"], "stop_reason": "tool_use", "messages": 14})  # fmt: skip


def _check(browser, name: str, width: int) -> list[str]:
    """Screenshot the page open in `browser`, then what is wrong with it at this width."""
    browser.screenshot(ARTIFACTS / f"{name}-{width}.png")
    seen = browser.execute(MEASURE)
    problems = [f"{name} @ {width}: {p}" for p in seen["problems"]]
    if problems and seen["widths"]:
        problems.append(f"{name} @ {width}: column widths {({k: round(v) for k, v in seen['widths'].items()})}")
    problems += [f"{name} @ {width}: exponent notation {m!r}" for m in EXPONENT.findall(seen["text"])][:3]
    return problems


def _open(browser, path: str, width: int) -> None:
    browser.viewport(width)
    browser.get(path)
    browser.find("#container")


def _change_url(label: str, team) -> str:
    from django.apps import apps
    from django.contrib.admin.utils import quote
    from django.urls import reverse

    model = apps.get_model(label)
    obj = {"accounts.provider": team["provider"], "batches.batch": team["batch"],
           "auth.user": team["user"]}.get(label) or model.objects.order_by("-pk").first()  # fmt: skip
    assert obj is not None, f"no {label} row to open: seed one"
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[quote(obj.pk)])


@pytest.mark.parametrize("label", MODELS)
def test_each_models_list_and_change_form_fit_both_widths(browser, team, label):
    from django.urls import reverse

    app, model = label.split(".")
    problems = []
    for width in WIDTHS:
        _open(browser, reverse(f"admin:{app}_{model}_changelist"), width)
        problems += _check(browser, f"{model}-list", width)
        _open(browser, _change_url(label, team), width)
        problems += _check(browser, f"{model}-change", width)
    assert not problems, "\n".join(problems)


def test_the_usage_list_shows_outcome_cost_and_latency_and_the_audit_list_its_changes(browser, team):
    for width in WIDTHS:
        _open(browser, "/admin/usage/usagerecord/", width)
        widths = browser.execute(MEASURE)["widths"]
        for column in ("column-outcome_status", "column-cost", "column-latency_ms", "column-project_key"):
            shown = max((w for name, w in widths.items() if name.startswith(column)), default=0)  # cost or cost_usd
            assert shown > 20, (width, column, widths)
        _open(browser, "/admin/accounts/auditevent/", width)
        widths = browser.execute(MEASURE)["widths"]
        assert widths["column-summary"] >= 0.3 * sum(widths.values()), (width, widths)  # the diff is the point


def test_index_dashboard_report_and_live_feed_fit_both_widths(browser, team, gateway_server):
    problems = []
    for width in WIDTHS:
        _open(browser, "/admin/", width)
        browser.find("#usage-dashboard")
        problems += _check(browser, "index", width)
        _open(browser, "/admin/reports/finance/?group=key", width)
        problems += _check(browser, "finance-report", width)
        _open(browser, "/admin/usage/usagerecord/live/", width)
        browser.find("#feed-status.connected")
        response = pw.anthropic_chat(gateway_server.url, team["secret"], team["alias"],
                                     "USAGE: in=1200 out=340\nSAY: ok")  # fmt: skip
        assert response.status_code == 200, response.text
        browser.find(f"#feed tr[data-request-id='{response.headers['request-id']}']")
        problems += _check(browser, "live-feed", width)
    assert not problems, "\n".join(problems)


def test_a_batch_opened_from_the_list_shows_its_items(browser, team):
    batch = team["batch"]
    for width in WIDTHS:
        _open(browser, "/admin/batches/batch/", width)
        browser.submit(f"#result_list a[href*='/{batch.id.replace('_', '_5F')}/']")  # the list's own link
        rows = browser.execute("return [...document.querySelectorAll('td.field-custom_id')].map(c => c.innerText)")
        assert sorted(rows) == [f"eval_case_{n:04d}_long_identifier" for n in range(4)]
        assert not (problems := _check(browser, "batch-detail", width)), "\n".join(problems)


def test_the_provider_page_tests_its_accounts_and_the_list_shows_health(browser, team):
    provider = team["provider"]
    _open(browser, f"/admin/accounts/provider/{provider.pk}/change/", 1440)
    browser.submit("#test-connection")
    messages = browser.text("ul.messagelist").lower()  # as shown: the theme capitalizes the first letter
    assert f"{provider.name}/main: ok in" in messages
    assert f"{provider.name}/spare: failed in" in messages and "http 401" in messages
    assert not (problems := _check(browser, "provider-tested", 1440)), "\n".join(problems)
    _open(browser, "/admin/accounts/provider/", 1440)
    health = browser.execute("return Object.fromEntries([...document.querySelectorAll('#result_list tbody tr')]"
                             ".map(r => [r.querySelector('th, td.field-name').innerText,"
                             " r.querySelector('td.field-health').innerText]))")  # fmt: skip
    # A refused test is the account's last error, not an open breaker: the provider stays ok.
    assert health[provider.name].startswith("ok · 2 of 2 accounts healthy"), health
    assert "spare: HTTP 401" in health[provider.name]
    assert health["anthropic-main"].startswith("degraded · 1 of 2 accounts healthy"), health
    assert "backup: cooling down until" in health["anthropic-main"]
    assert health["deepseek"].startswith("disabled"), health  # bench's providers are made disabled
    assert not (problems := _check(browser, "provider-health", 1440)), "\n".join(problems)


def test_keys_are_named_with_their_project(browser, team):
    from accounts.models import ApiKey

    ci_bots = ApiKey.objects.filter(name="ci-bot").select_related("project")
    assert ci_bots.count() >= 3
    _open(browser, "/admin/accounts/auditevent/", 1440)  # any page: the labels come from ApiKey.__str__
    for key in ci_bots:
        assert str(key) == f"{key.project.name} / ci-bot ({key.prefix}…)"
    _open(browser, f"/admin/accounts/apikey/{ci_bots[0].pk}/change/", 1440)
    assert f"{ci_bots[0].project.name} / ci-bot" in browser.text("#content")


def test_view_site_leads_somewhere_useful(browser, team):
    _open(browser, "/admin/", 1440)
    browser.submit("#user-tools a[href='/docs']")
    assert "Swagger" in browser.source or "swagger" in browser.source
