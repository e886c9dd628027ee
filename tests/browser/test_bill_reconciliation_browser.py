"""The bills-against-the-ledger page (usage/bill_views.py) in headless Chromium, as a Finance user reads it: the line
over tolerance is highlighted, money shows in cents with the exact value on hover, and the table fits the window
at 1440 and 1024 px (no horizontal scrolling). Screenshots at both widths go to the test's tmp directory."""

import base64
import secrets
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Provider, ProviderAccount
from usage.models import BillLine

pytestmark = pytest.mark.browser


@pytest.fixture
def browser(browser):
    call_command("collectstatic", "--noinput", verbosity=0)  # the server serves STATIC_ROOT, as after bin/run
    return browser


@pytest.fixture
def drift(committed):
    tag = secrets.token_hex(3)
    password = secrets.token_urlsafe(16)
    user = User.objects.create_user(f"finance-{tag}", password=password, is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    provider = Provider.objects.create(name=f"bills-browser-{tag}", kind="anthropic", base_url="http://127.0.0.1:9")
    account = ProviderAccount.objects.create(provider=provider, name="main")
    today = timezone.localdate()
    common = {"account": account, "provider_name": provider.name, "account_name": "main", "source": "anthropic_admin"}
    BillLine.objects.create(day=today - timedelta(days=1), model="claude-sonnet-4-5-with-a-rather-long-model-name",
                            bill_input_tokens=1_234_567, ledger_input_tokens=1_234_567, bill_output_tokens=98_765,
                            ledger_output_tokens=96_765, bill_cache_read_tokens=5_000_000,
                            ledger_cache_read_tokens=5_000_000, bill_cache_write_tokens=800_000,
                            ledger_cache_write_tokens=800_000, bill_cost_usd=Decimal("1256.20585066"),
                            ledger_cost_usd=Decimal("1256.17585066"), ledger_requests=4321, over_tolerance=True,
                            **common)  # fmt: skip
    BillLine.objects.create(day=today - timedelta(days=1), model="claude-haiku-4-5", bill_input_tokens=10,
                            ledger_input_tokens=10, bill_output_tokens=5, ledger_output_tokens=5, bill_cache_read_tokens=0,
                            bill_cache_write_tokens=0, bill_cost_usd=Decimal("0.00003500"),
                            ledger_cost_usd=Decimal("0.00003500"), ledger_requests=1, **common)  # fmt: skip
    yield user.username, password, account
    provider.delete()
    user.delete()


def test_finance_reads_the_drift_highlighted_and_fitting_the_window(browser, drift, tmp_path):
    username, password, account = drift
    browser.get(f"/admin/login/?next=/admin/reports/bills/%3Faccount%3D{account.pk}")
    browser.type("#id_username", username)
    browser.type("#id_password", password)
    browser.submit("input[type=submit]")
    assert "Bills against the ledger" in browser.source
    for width in (1440, 1024):
        browser._s("POST", "/window/rect", {"width": width, "height": 900})
        page = browser._s("POST", "/execute/sync", {"script": """
            const rows = [...document.querySelectorAll('#bills-table tbody tr')];
            const over = rows.find(r => r.classList.contains('bd-over'));
            return {scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
                    table: document.getElementById('bills-table').getBoundingClientRect().right,
                    rows: rows.length, overBg: over && getComputedStyle(over.cells[0]).backgroundColor,
                    okBg: getComputedStyle(rows.find(r => !r.classList.contains('bd-over')).cells[0]).backgroundColor,
                    diff: over && over.querySelector('.bd-cost-diff').textContent.trim(),
                    noDiff: rows.filter(r => r.querySelector('.bd-cost-diff')).length,
                    exact: over && over.querySelector('.bd-cost-diff').title};""", "args": []})  # fmt: skip
        png = base64.b64decode(browser._s("GET", "/screenshot"))
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        (tmp_path / f"bills-{width}.png").write_bytes(png)
        assert page["rows"] == 2
        assert page["scroll"] <= page["inner"] and page["table"] <= page["inner"], (width, page)
        assert page["overBg"] != page["okBg"]  # the line over tolerance stands out
        assert page["diff"] == "+$0.03" and page["exact"] == "$0.03000000" and page["noDiff"] == 1
    assert "E-" not in browser.source and "1,256.21" in browser.source
