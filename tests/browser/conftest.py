"""The browser every page test drives: headless Chromium through chromedriver, against the session's gateway."""

import secrets

import pytest

from .webdriver import Browser, require


@pytest.fixture
def browser(request):
    require()
    b = Browser(request.getfixturevalue("gateway_server").url)
    yield b
    b.quit()


@pytest.fixture
def staff(committed):
    """A committed superuser (the server sees it): (username, password); removed afterwards."""
    from django.contrib.auth.models import User

    password = secrets.token_urlsafe(16)
    user = User.objects.create_superuser(f"staff-{secrets.token_hex(4)}", password=password)
    yield user.username, password
    user.delete()


@pytest.fixture
def served(gateway_server, committed):
    """An Anthropic route on a fake upstream of its own, and a key for a new project (a row the test may change):
    (Anthropic client on the gateway, alias, project)."""
    import anthropic

    from tests.e2e import policy_world as pw
    from tests.e2e.conftest import FAKE_KEY
    from tests.fakes.upstream import FakeUpstream

    fake = FakeUpstream(key=FAKE_KEY)
    fake.start()
    project = pw.project()
    alias = pw.route((pw.provider(fake, kind="anthropic"), "fake-claude", 0))
    secret = pw.key(project)
    pw.wait_for_config(gateway_server.url, secret, alias)
    yield anthropic.Anthropic(base_url=gateway_server.url, api_key=secret, max_retries=0), alias, project
    fake.stop()
