"""A request log in a real headless Chromium: a request of a project that keeps full logs appears on the live feed,
its request id links to the log, and the log page shows the conversation with thinking collapsed and the raw
JSON one click away."""

import pytest

from accounts.models import Project
from tests.e2e.conftest import ledger_row

pytestmark = pytest.mark.browser


def test_the_live_feed_links_to_a_readable_conversation(browser, staff, served):
    username, password = staff
    client, alias, project = served
    Project.objects.filter(pk=project.pk).update(request_log_mode="full")  # the server reads it again within
    # GATEWAY_CACHE_TTL (0.5 s in tests), long before the request below, sent after the login
    browser.get("/admin/login/?next=/admin/usage/usagerecord/live/")
    browser.type("#id_username", username)
    browser.type("#id_password", password)
    browser.submit("input[type=submit]")
    browser.find("#feed-status.connected")

    response = client.messages.with_raw_response.create(
        model=alias, max_tokens=200, system="Be brief.", thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "THINK: the user wants a greeting\nSAY: hello there"}],
    )
    request_id = response.headers["request-id"]
    ledger_row(request_id)  # written (with its log) by the ledger writer, a flush interval after the feed's row
    browser.submit(f"#feed tr[data-request-id='{request_id}'] a")  # the request id is the link
    browser.find(".conversation")
    assert "hello there" in browser.text(".conversation .turn.assistant")
    assert "Be brief." in browser.text(".conversation .turn.system")
    thinking = ".conversation details.thinking"
    assert browser.text(f"{thinking} summary") == "thinking"
    assert "the user wants a greeting" not in browser.text(".conversation .turn.assistant")  # collapsed
    browser.click(f"{thinking} summary")
    assert "the user wants a greeting" in browser.text(thinking)
    assert browser.text("#raw-json pre") == ""  # one click away
    browser.click("#raw-json summary")
    assert '"request"' in browser.text("#raw-json pre")
