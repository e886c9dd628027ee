"""The live request feed in a real headless Chromium: staff open it from the usage records list, a request made
with the SDK appears as a row without reloading the page."""

import pytest

pytestmark = pytest.mark.browser


def test_a_finished_request_appears_on_the_live_page(browser, staff, served):
    username, password = staff
    client, alias, project = served
    project = project.slug
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
