"""The live request feed in a real headless Chromium: staff open it from the usage records list, a request made
with the SDK appears as a row without reloading the page."""

import os
import secrets

import pytest
from django.contrib.auth.models import User

from .webdriver import Browser, missing

pytestmark = pytest.mark.browser


@pytest.fixture
def browser(request):
    reason = missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: {reason}")
        pytest.skip(reason)
    b = Browser(request.getfixturevalue("gateway_server").url)
    yield b
    b.quit()


@pytest.fixture
def staff(committed):
    password = secrets.token_urlsafe(16)
    user = User.objects.create_superuser(f"live-{secrets.token_hex(4)}", password=password)
    yield user.username, password
    user.delete()


def test_a_finished_request_appears_on_the_live_page(browser, staff, world):
    username, password = staff
    browser.get("/admin/login/?next=/admin/usage/usagerecord/")
    browser.type("#id_username", username)
    browser.type("#id_password", password)
    browser.submit("input[type=submit]")
    browser.submit(".object-tools a[href$='/admin/usage/usagerecord/live/']")  # linked from the ledger list
    browser.find("#feed-status.connected")  # the websocket is open

    response = world.anthropic().messages.with_raw_response.create(
        model="gw-anthropic", max_tokens=30, messages=[{"role": "user", "content": "USAGE: in=42 out=7\nSAY: live"}]
    )
    request_id = response.headers["request-id"]
    row = f"#feed tr[data-request-id='{request_id}']"
    browser.find(row)  # pushed, not reloaded
    cells = browser.text(row)
    assert "alpha" in cells and "gw-anthropic" in cells and "fake-anthropic" in cells and "200" in cells
    assert "42" in cells and " 7 " in f" {cells} "
    assert browser.text("#feed-count") == "1" or int(browser.text("#feed-count")) >= 1
