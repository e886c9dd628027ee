"""Money as people read it, in a real headless Chromium against the real server (daphne) (issue 26): requests made
with the Anthropic SDK through a fake upstream, one to a priced model and one to a model with no price (a $0 cost
the ledger sums to 0E-8). The live feed, the dashboard and the finance report show cents with the exact amount on
hover, never exponent notation; the unpriced model is flagged. Screenshots at 1440 px go to the test's tmp dir."""

import base64
import re
import secrets
import time
from datetime import timedelta

import anthropic
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from tests.e2e import policy_world as pw
from tests.e2e.conftest import FAKE_KEY
from tests.fakes.upstream import FakeUpstream
from usage.models import UsageRecord

pytestmark = pytest.mark.browser
CENTS = re.compile(r"^(-?\$\d{1,3}(,\d{3})*\.\d\d|-?<\$0\.01)$")
EXACT = re.compile(r"^-?\$\d{1,3}(,\d{3})*\.\d+$")
EXPONENT = re.compile(r"\dE[-+]?\d")
MONEY_SPANS = "return [...document.querySelectorAll(arguments[0] + ' span.money')].map(s => [s.textContent, s.title]);"


@pytest.fixture
def money_world(gateway_server, committed):
    """A superuser; a project whose key calls two routes on a fake upstream: one priced ($3 / $15 per Mtok), one
    with no price at all."""
    call_command("collectstatic", "--noinput", verbosity=0)  # the admin's CSS, as after bin/run
    fake = FakeUpstream(key=FAKE_KEY)
    fake.start()
    tag = secrets.token_hex(3)
    priced_model, unpriced_model = f"priced-{tag}", f"unpriced-{tag}"
    pw.price(priced_model, "3", "15")
    prov = pw.provider(fake, kind="anthropic")
    priced, unpriced = pw.route((prov, priced_model, 0)), pw.route((prov, unpriced_model, 0))
    proj = pw.project()
    secret = pw.key(proj)
    pw.wait_for_config(gateway_server.url, secret, unpriced)
    password = secrets.token_urlsafe(16)
    user = User.objects.create_superuser(f"money-{tag}", password=password)
    client = anthropic.Anthropic(base_url=gateway_server.url, api_key=secret, max_retries=0)
    yield SimpleWorld(client, user.username, password, proj, priced, unpriced, unpriced_model)
    fake.stop()
    UsageRecord.objects.filter(project=proj).delete()
    user.delete()


class SimpleWorld:
    def __init__(self, client, username, password, project, priced, unpriced, unpriced_model):
        self.client, self.username, self.password, self.project = client, username, password, project
        self.priced, self.unpriced, self.unpriced_model = priced, unpriced, unpriced_model


def _js(browser, script: str, *args):
    return browser._s("POST", "/execute/sync", {"script": script, "args": list(args)})


def _screenshot(browser, path, width=1440, height=1400):
    browser._s("POST", "/window/rect", {"width": width, "height": height})
    png = base64.b64decode(browser._s("GET", "/screenshot"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    path.write_bytes(png)


def _assert_money(browser, scope: str) -> list:
    spans = _js(browser, MONEY_SPANS, scope)
    assert spans, f"no money on {scope}"
    for text, title in spans:
        assert CENTS.match(text), (scope, text)
        assert EXACT.match(title), (scope, title)
    assert not EXPONENT.search(browser.text(scope)), scope
    return spans


def test_live_feed_dashboard_and_report_show_cents_exact_on_hover_and_flag_the_unpriced_model(browser, money_world,
                                                                                              tmp_path):  # fmt: skip
    w = money_world
    browser.get("/admin/login/?next=/admin/usage/usagerecord/live/")
    browser.type("#id_username", w.username)
    browser.type("#id_password", w.password)
    browser.submit("input[type=submit]")
    browser.find("#feed-status.connected")

    ids = {}
    for alias in (w.priced, w.unpriced):
        response = w.client.messages.with_raw_response.create(
            model=alias, max_tokens=30, messages=[{"role": "user", "content": "USAGE: in=42 out=7\nSAY: money"}]
        )
        ids[alias] = response.headers["request-id"]
    cells = {}
    for alias, request_id in ids.items():
        browser.find(f"#feed tr[data-request-id='{request_id}'] td.cost")
        cell = f"#feed tr[data-request-id='{request_id}'] td.cost"
        cells[alias] = _js(browser, "const td = document.querySelector(arguments[0]); return [td.textContent, td.title];",
                           cell)
    # 42 x $3 + 7 x $15 per million = $0.000231: under half a cent, shown as such, exact on hover
    assert cells[w.priced] == ["<$0.01", "$0.00023100 exact"]
    assert cells[w.unpriced] == ["$0.00", "$0.00000000 exact"]  # the ledger's 0E-8, written out
    assert not EXPONENT.search(browser.text("#feed"))
    _screenshot(browser, tmp_path / "live-1440.png")

    # the dashboard (cached 30 s by the server: reload until it has these requests)
    deadline = time.monotonic() + 40
    while True:
        browser.get("/admin/")
        if f'data-model="{w.unpriced_model}"' in browser.source or time.monotonic() > deadline:
            break
        time.sleep(2)
    marker = browser.text("#usage-dashboard #unpriced-marker")
    assert w.unpriced_model in marker and "counted at $0" in marker
    _assert_money(browser, "#usage-dashboard")
    assert browser.text("#dash-unbudgeted-today").endswith("outside daily budgets")
    _screenshot(browser, tmp_path / "dashboard-1440.png")

    # the finance report for today, this project: cents, exact titles, the marker with a link to price the model
    today = timezone.localdate()
    browser.get(f"/admin/reports/finance/?from={(today - timedelta(days=1)).isoformat()}&to={today.isoformat()}"
                f"&project={w.project.pk}&group=model")  # fmt: skip
    spans = _assert_money(browser, "#content-main")
    assert ["<$0.01", "$0.00023100"] in spans  # the priced request's cost in the table
    assert not EXPONENT.search(browser.text("#report-table"))
    link = browser.find(f"#unpriced-marker li[data-model='{w.unpriced_model}'] a")
    href = browser._s("GET", f"/element/{link}/property/href")
    assert href.endswith(f"/admin/usage/modelprice/add/?model={w.unpriced_model}")
    assert browser.text("#forecast")  # the forecast table is drawn (its numbers: tests/test_finance_numbers.py)
    _screenshot(browser, tmp_path / "finance-report-1440.png", height=2600)
