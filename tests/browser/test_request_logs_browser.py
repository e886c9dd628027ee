"""A request log in a real headless Chromium: a request of a project that keeps full logs appears on the live feed,
its request id links to the log, and the log page shows the conversation with thinking collapsed and the raw
JSON one click away."""


import anthropic
import pytest

from accounts.models import Project
from tests.e2e import policy_world as pw
from tests.e2e.conftest import FAKE_KEY, ledger_row
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.browser


@pytest.fixture
def served(gateway_server, committed):
    """An Anthropic route on a fake upstream of its own, and a key for a new project that keeps full logs."""
    fake = FakeUpstream(key=FAKE_KEY)
    fake.start()
    proj = pw.project()
    Project.objects.filter(pk=proj.pk).update(request_log_mode="full")
    alias = pw.route((pw.provider(fake, kind="anthropic"), "fake-claude", 0))
    secret = pw.key(proj)
    pw.wait_for_config(gateway_server.url, secret, alias)
    yield anthropic.Anthropic(base_url=gateway_server.url, api_key=secret, max_retries=0), alias
    fake.stop()


def test_the_live_feed_links_to_a_readable_conversation(browser, staff, served):
    username, password = staff
    client, alias = served
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
