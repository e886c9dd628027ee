"""The providers' own bills against the ledger (issue 26, docs/reconciliation.md): requests go through the real
gateway to a fake upstream of each kind, whose Admin API usage and cost reports (tests/fakes/upstream/
wire_reports.py) count what it served, plus a planted disagreement: the Anthropic account was billed 2,000
output tokens more today than the gateway saw, and the OpenAI account billed 50,000 input tokens two days ago
that never went through the gateway. `manage.py reconcile_bills` (no Celery), the nightly task on a real Celery
worker with beat, and the web process's own nightly thread when there is no broker fetch those reports
(following pages) and store them per day x account x model; the admin page and its CSV show exactly the planted
drift, over tolerance, and the agreeing line as agreeing. A CSV bill (command or upload) is compared the same way.

Runs on whichever database the suite uses (SQLite; PostgreSQL with DATABASE_URL). The Celery test's broker is
BILLS_CELERY_REDIS_URL (default Redis db 6), flushed when it starts."""

import csv
import io
import os
import re
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import anthropic
import httpx
import openai
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.celery_world import celery_env, start_worker, stop_worker
from tests.e2e.conftest import ledger_row
from tests.fakes.upstream import FakeUpstream
from tests.fakes.upstream.wire_reports import ADMIN_KEY

REDIS_URL = os.environ.get("BILLS_CELERY_REDIS_URL", "redis://127.0.0.1:6379/6")
KEY = "sk-bills-inference-key"
CLAUDE, GPT = "bills-claude-1", "bills-gpt-1"  # the fakes' models; the reports name them with a date suffix
PRICES = {CLAUDE: {"input": "3", "output": "15", "cache_read": "0.3", "cache_write": "3.75"},
          GPT: {"input": "2", "output": "8", "cache_read": "0.5", "cache_write": "0"}}  # fmt: skip


@pytest.fixture(scope="module")
def bills(gateway_server, django_db_blocker):
    """Two providers of the gateway's own (one per kind) on a fake of their own, routes, prices, a client key and a
    bill source per account reading the fake's reports with its admin key; traffic sent; drift planted."""
    from accounts.keys import key_create
    from accounts.models import ModelRoute, Project, Provider, ProviderAccount, RouteTarget
    from usage.models import BillSource, ModelPrice

    fake = FakeUpstream(key=KEY)
    fake.start()
    with django_db_blocker.unblock():
        accounts = {}
        for name, kind, url, model in (("bills-anthropic", "anthropic", fake.url, CLAUDE),
                                       ("bills-openai", "openai", fake.openai_url, GPT)):  # fmt: skip
            provider = Provider.objects.create(name=name, kind=kind, base_url=url, read_timeout=20, connect_timeout=2)
            account = ProviderAccount(provider=provider, name="main")
            account.set_credential(KEY)
            account.save()
            route = ModelRoute.objects.create(alias=name.replace("-", "-route-"), default_max_tokens=256)
            RouteTarget.objects.create(route=route, provider=provider, remote_model=model)
            rates = PRICES[model]
            ModelPrice.objects.create(model=model, input_per_mtok=rates["input"], output_per_mtok=rates["output"],
                                      cache_read_per_mtok=rates["cache_read"], cache_write_per_mtok=rates["cache_write"],
                                      effective_from=timezone.localdate() - timedelta(days=60))  # fmt: skip
            source = BillSource(account=account, kind=f"{kind}_admin")
            source.set_admin_key(ADMIN_KEY)
            source.save()
            accounts[kind] = account
        project = Project.objects.create(slug=f"bills-{uuid.uuid4().hex[:6]}", name="Bills")
        client_key = key_create(project=project, name="bills")[1]
    httpx.post(f"{fake.url}/_fake/reports/config", json={
        "prices": PRICES, "model_ids": {CLAUDE: f"{CLAUDE}-20250929", GPT: f"{GPT}-2024-07-18"}}).raise_for_status()
    time.sleep(0.6)  # the gateway reloads routes and prices every 0.5 s in tests
    world = SimpleNamespace(fake=fake, url=gateway_server.url, accounts=accounts, key=client_key, server=gateway_server)
    with django_db_blocker.unblock():
        world.ledger = _traffic(world)
    _plant(fake)
    yield world
    fake.stop()


def _traffic(world) -> dict:
    """Requests through the gateway (both APIs, streamed and not); -> the ledger rows per account kind."""
    a = anthropic.Anthropic(base_url=world.url, api_key=world.key, max_retries=0)
    o = openai.OpenAI(base_url=world.url + "/v1", api_key=world.key, max_retries=0)
    ids = {"anthropic": [], "openai": []}
    m = a.messages.with_raw_response.create(model="bills-route-anthropic", max_tokens=64, messages=[
        {"role": "user", "content": "bills 1 USAGE: in=1200 out=340 cache_read=5000 cache_write=800"}])  # fmt: skip
    ids["anthropic"].append(m.headers["request-id"])
    with a.messages.stream(model="bills-route-anthropic", max_tokens=64, messages=[
            {"role": "user", "content": "bills 2 USAGE: in=17 out=9"}]) as s:  # fmt: skip
        s.until_done()
        ids["anthropic"].append(s.response.headers["request-id"])
    c = o.chat.completions.with_raw_response.create(model="bills-route-openai", messages=[
        {"role": "user", "content": "bills 3 USAGE: in=2000 out=150 cache_read=1024"}])  # fmt: skip
    ids["openai"].append(c.headers["x-request-id"])
    with o.chat.completions.with_streaming_response.create(model="bills-route-openai", stream=True, messages=[
            {"role": "user", "content": "bills 4 USAGE: in=333 out=77 cache_read=2048"}]) as r:  # fmt: skip
        list(r.iter_lines())
        ids["openai"].append(r.headers["x-request-id"])
    return {kind: [ledger_row(rid) for rid in rids] for kind, rids in ids.items()}


def _plant(fake) -> None:
    """The bills disagree: Anthropic charged 2,000 output tokens more today ($0.03 at $15/Mtok); OpenAI billed
    50,000 input tokens two days ago that the gateway never saw ($0.10 at $2/Mtok)."""
    two_days_ago = (timezone.localdate() - timedelta(days=2)).isoformat()
    for body in ({"api": "anthropic", "day": "today", "model": CLAUDE, "out": 2000},
                 {"api": "openai", "day": two_days_ago, "model": GPT, "in": 50_000}):  # fmt: skip
        httpx.post(f"{fake.url}/_fake/reports/adjust", json=body).raise_for_status()


def _lines(world) -> dict:
    from usage.models import BillLine

    lines = BillLine.objects.filter(account__in=world.accounts.values())
    return {(line.day, line.provider_name, line.model): line for line in lines}


def _assert_planted_drift(world) -> None:
    today, two_days_ago = timezone.localdate(), timezone.localdate() - timedelta(days=2)
    lines = _lines(world)
    assert set(lines) == {(today, "bills-anthropic", CLAUDE), (today, "bills-openai", GPT),
                          (two_days_ago, "bills-openai", GPT)}, lines  # fmt: skip

    claude = lines[(today, "bills-anthropic", CLAUDE)]
    rows = world.ledger["anthropic"]
    assert claude.ledger_requests == 2
    assert (claude.bill_input_tokens, claude.ledger_input_tokens) == (1217, sum(r.input_tokens for r in rows)) == (1217, 1217)
    assert (claude.bill_cache_read_tokens, claude.bill_cache_write_tokens) == (5000, 800)
    assert (claude.ledger_cache_read_tokens, claude.ledger_cache_write_tokens) == (5000, 800)
    assert claude.ledger_output_tokens == sum(r.output_tokens for r in rows) == 349
    assert claude.bill_output_tokens == 349 + 2000
    assert claude.ledger_cost_usd == sum((r.cost_usd for r in rows), Decimal(0))
    assert claude.bill_cost_usd - claude.ledger_cost_usd == Decimal("0.03")  # exactly the planted tokens' price
    assert claude.over_tolerance

    gpt = lines[(today, "bills-openai", GPT)]
    rows = world.ledger["openai"]
    assert (gpt.bill_input_tokens, gpt.bill_output_tokens, gpt.bill_cache_read_tokens) == (2333, 227, 3072)
    assert (gpt.ledger_input_tokens, gpt.ledger_output_tokens, gpt.ledger_cache_read_tokens) == (2333, 227, 3072)
    assert gpt.ledger_cost_usd == sum((r.cost_usd for r in rows), Decimal(0)) > 0
    assert abs(gpt.bill_cost_usd - gpt.ledger_cost_usd) < Decimal("0.000001")  # OpenAI's amounts are JSON floats
    assert not gpt.over_tolerance

    unseen = lines[(two_days_ago, "bills-openai", GPT)]
    assert (unseen.bill_input_tokens, unseen.ledger_input_tokens, unseen.ledger_requests) == (50_000, 0, 0)
    assert unseen.bill_cost_usd == Decimal("0.1") and unseen.ledger_cost_usd == 0
    assert unseen.over_tolerance


def test_the_command_fetches_the_reports_and_stores_the_planted_drift(bills, committed):
    from prometheus_client import REGISTRY

    out = io.StringIO()
    call_command("reconcile_bills", "--days", "40", "--include-today", "--account", "bills-anthropic/main",
                 "--account", "bills-openai/main", stdout=out)  # fmt: skip
    _assert_planted_drift(bills)
    text = out.getvalue()
    assert "bills-anthropic/main: " in text and "1 line(s), 1 over tolerance" in text
    assert re.search(rf"OVER {timezone.localdate()} {CLAUDE}: provider \$0\.\d+ vs gateway \$0\.\d+", text), text
    assert "bills-openai/main: " in text and "2 line(s), 1 over tolerance" in text

    calls = httpx.get(f"{bills.fake.url}/_fake/reports/calls").json()
    usage_calls = [c for c in calls if "/usage_report/messages" in c]
    assert len(usage_calls) == 2 and "page=page_" in usage_calls[1]  # 40 days: 31 buckets, then the next page
    assert any("/v1/organization/costs" in c and "group_by%5B%5D=line_item" in c for c in calls)
    assert REGISTRY.get_sample_value("gateway_bill_drift_rows", {"provider": "bills-openai", "account": "main"}) == 1

    call_command("reconcile_bills", "--days", "3", "--include-today", "--account", "bills-openai/main", stdout=out)
    _assert_planted_drift(bills)  # run again: the same lines, replaced and not added


def test_a_wrong_admin_key_is_an_error_on_the_source_not_a_crash(bills, committed):
    from usage.models import BillSource

    source = BillSource.objects.get(account=bills.accounts["anthropic"])
    source.set_admin_key(KEY)  # the inference key: the Admin API refuses it
    source.save()
    err = io.StringIO()
    try:
        call_command("reconcile_bills", "--days", "2", "--account", "bills-anthropic/main", stdout=io.StringIO(),
                     stderr=err)  # fmt: skip
    finally:
        source.set_admin_key(ADMIN_KEY)
        BillSource.objects.filter(pk=source.pk).update(admin_key_encrypted=source.admin_key_encrypted)
    assert "401 from /v1/organizations/usage_report/messages: invalid x-api-key" in err.getvalue()
    assert KEY not in err.getvalue()
    source.refresh_from_db()
    assert source.last_error.startswith("401 from")


def test_the_admin_page_highlights_the_drift_and_the_csv_is_exact(bills, committed):
    from tests.e2e.test_management_api import _finance_login

    call_command("reconcile_bills", "--days", "3", "--include-today", stdout=io.StringIO())
    browser = _finance_login(bills)
    today, first = timezone.localdate(), timezone.localdate() - timedelta(days=2)
    page = browser.get("/admin/reports/bills/", params={"from": first.isoformat(), "to": today.isoformat()})
    assert page.status_code == 200, page.text[:300]
    rows = re.findall(r'<tr class="(bd-over|)" data-day="([\d-]+)" data-model="([^"]+)" data-account="([^"]+)">', page.text)
    ours = {(day, model, account): over for over, day, model, account in rows if account.startswith("bills-")}
    assert ours == {(today.isoformat(), CLAUDE, "bills-anthropic/main"): "bd-over",
                    (today.isoformat(), GPT, "bills-openai/main"): "",
                    (first.isoformat(), GPT, "bills-openai/main"): "bd-over"}  # fmt: skip
    assert 'title="$0.03000000">+$0.03</span>' in page.text  # cents on screen, the exact value on hover
    assert "E-" not in page.text

    exported = browser.get("/admin/reports/bills/", params={"from": first.isoformat(), "to": today.isoformat(),
                                                            "over": "1", "format": "csv"})  # fmt: skip
    table = list(csv.DictReader(io.StringIO(exported.text)))
    claude = next(r for r in table if r["model"] == CLAUDE)
    assert claude["difference_cost_usd"] == "0.03000000" and claude["difference_output_tokens"] == "2000"
    assert claude["over_tolerance"] == "yes" and claude["provider"] == "bills-anthropic"
    assert {r["model"] for r in table if r["provider"].startswith("bills-")} == {CLAUDE, GPT}
    token = {"csrfmiddlewaretoken": browser.cookies["csrftoken"]}
    assert browser.post("/admin/reports/bills/", data=token).status_code == 403  # Finance reads; it does not import


def test_a_csv_bill_is_compared_for_the_days_it_lists(bills, committed, tmp_path):
    from usage.models import BillLine

    today = timezone.localdate()
    rows = bills.ledger["openai"]
    cost = sum((r.cost_usd for r in rows), Decimal(0)) + Decimal("0.004")  # off by less than a cent: agrees
    bill = tmp_path / "bill.csv"
    bill.write_text("date,model,input_tokens,output_tokens,cache_read_tokens,cost_usd\n"
                    f"{today},{GPT}-2024-07-18,2333,227,3072,{cost}\n"
                    f"{today},other-model,,,,1.50\n")  # fmt: skip
    out = io.StringIO()
    call_command("reconcile_bills", "--csv", str(bill), "--account", "bills-openai/main", stdout=out)
    lines = {line.model: line for line in BillLine.objects.filter(account=bills.accounts["openai"], day=today)}
    assert set(lines) == {GPT, "other-model"} and {line.source for line in lines.values()} == {"csv"}
    assert not lines[GPT].over_tolerance and lines[GPT].bill_cost_usd == cost
    assert lines["other-model"].over_tolerance and lines["other-model"].bill_input_tokens is None
    assert "2 line(s), 1 over tolerance" in out.getvalue()

    bill.write_text("date,model,cost_usd\n2026-13-01,x,1\n")
    with pytest.raises(CommandError, match="line 2: date '2026-13-01' is not YYYY-MM-DD"):
        call_command("reconcile_bills", "--csv", str(bill), "--account", "bills-openai/main", stdout=out)
    with pytest.raises(CommandError, match="exactly one --account"):
        call_command("reconcile_bills", "--csv", str(bill), stdout=out)


def test_the_nightly_task_runs_on_a_real_celery_worker(bills, committed, tmp_path):
    from usage.models import BillLine

    BillLine.objects.filter(account__in=bills.accounts.values()).delete()
    env = celery_env(REDIS_URL, GATEWAY_RECONCILE_BEAT_SECONDS="1", GATEWAY_RECONCILE_DAYS="3",
                     GATEWAY_RECONCILE_INCLUDE_TODAY="true", GATEWAY_ROLLUP_IN_PROCESS="off")  # fmt: skip
    worker = start_worker(env, tmp_dir=tmp_path, beat=True)
    try:
        deadline = time.monotonic() + 60
        while len(_lines(bills)) < 3 or "bill reconciliation:" not in worker.log():
            assert time.monotonic() < deadline, f"beat did not reconcile; worker log:\n{worker.log()[-4000:]}"
            time.sleep(0.25)
        _assert_planted_drift(bills)
        assert "usage.tasks.reconcile_bills" in worker.log()
        assert "bill drift over tolerance" in worker.log() and CLAUDE in worker.log()
    finally:
        stop_worker(worker)


def test_without_a_broker_the_web_process_reconciles_after_its_rollup(bills, committed, tmp_path):
    from tests.conftest import start_gateway, stop_gateway
    from usage.models import BillLine

    BillLine.objects.filter(account__in=bills.accounts.values()).delete()
    server = start_gateway(extra_env={"REDIS_URL": "", "GATEWAY_ROLLUP_IN_PROCESS": "auto",
                                      "GATEWAY_ROLLUP_FIRST_DELAY_SECONDS": "0.5", "GATEWAY_RECONCILE_DAYS": "3",
                                      "GATEWAY_RECONCILE_INCLUDE_TODAY": "true"}, tmp_dir=tmp_path)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while len(_lines(bills)) < 3 or "bill reconciliation (in-process)" not in server.log():
            assert time.monotonic() < deadline, f"the server did not reconcile; its log:\n{server.log()[-3000:]}"
            time.sleep(0.25)
        _assert_planted_drift(bills)
    finally:
        stop_gateway(server)


def test_a_csv_bill_uploaded_on_the_page_is_compared(bills, committed):
    from django.contrib.auth.models import User

    from usage.models import BillLine

    name, password = f"admin-{uuid.uuid4().hex[:6]}", "a long enough password 2"
    User.objects.create_superuser(name, password=password)
    browser = httpx.Client(base_url=bills.url, timeout=15)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', browser.get("/admin/login/").text).group(1)
    browser.post("/admin/login/", data={"username": name, "password": password, "csrfmiddlewaretoken": token})
    page = browser.get("/admin/reports/bills/")
    assert 'id="bills-upload"' in page.text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    day = timezone.localdate() - timedelta(days=5)
    done = browser.post("/admin/reports/bills/", data={"csrfmiddlewaretoken": token,
                                                       "account": bills.accounts["anthropic"].pk},
                        files={"file": ("bill.csv", f"date,model,output_tokens,cost_usd\n{day},{CLAUDE},10,0.25\n")})  # fmt: skip
    assert done.status_code == 302 and f"from={day}" in done.headers["location"]
    line = BillLine.objects.get(account=bills.accounts["anthropic"], day=day)
    assert (line.model, line.bill_cost_usd, line.ledger_cost_usd, line.source) == (CLAUDE, Decimal("0.25"), 0, "csv")
    assert line.over_tolerance  # billed, and the gateway saw nothing that day
    shown = browser.get(done.headers["location"])
    assert "1 line(s) from" in shown.text and "1 over tolerance" in shown.text
    bad = browser.post("/admin/reports/bills/", data={"csrfmiddlewaretoken": token, "account": bills.accounts["anthropic"].pk},
                       files={"file": ("bad.csv", "model\nx\n")}, follow_redirects=True)  # fmt: skip
    assert "Could not import bad.csv: line 1: the header needs at least the columns date and model" in bad.text
