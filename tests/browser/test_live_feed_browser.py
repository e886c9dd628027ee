"""The live request feed in a real headless Chromium: staff open it from the usage records list, a request made
with the SDK appears as a row without reloading the page."""


import anthropic
import pytest

from tests.e2e import policy_world as pw
from tests.e2e.conftest import FAKE_KEY
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.browser


@pytest.fixture
def served(gateway_server, committed):
    """An Anthropic route on a fake upstream of its own, and a key for a new project."""
    fake = FakeUpstream(key=FAKE_KEY)
    fake.start()
    proj = pw.project()
    alias = pw.route((pw.provider(fake, kind="anthropic"), "fake-claude", 0))
    secret = pw.key(proj)
    pw.wait_for_config(gateway_server.url, secret, alias)
    yield anthropic.Anthropic(base_url=gateway_server.url, api_key=secret, max_retries=0), alias, proj.slug
    fake.stop()


def test_a_finished_request_appears_on_the_live_page(browser, staff, served):
    username, password = staff
    client, alias, project = served
    browser.get("/admin/login/?next=/admin/usage/usagerecord/")
    browser.type("#id_username", username)
    browser.type("#id_password", password)
    browser.submit("input[type=submit]")
    browser.submit(".object-tools a[href$='/admin/usage/usagerecord/live/']")  # linked from the ledger list
    browser.find("#feed-status.connected")  # the websocket is open

    response = client.messages.with_raw_response.create(
        model=alias, max_tokens=30, messages=[{"role": "user", "content": "USAGE: in=42 out=7\nSAY: live"}]
    )
    request_id = response.headers["request-id"]
    row = f"#feed tr[data-request-id='{request_id}']"
    browser.find(row)  # pushed, not reloaded
    cells = browser.text(row)
    assert project in cells and alias in cells and "200" in cells and "ok" in cells
    assert " 42 " in f" {cells} " and " 7 " in f" {cells} "  # tokens in, out
    assert int(browser.text("#feed-count")) >= 1
