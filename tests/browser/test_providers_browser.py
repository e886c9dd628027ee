"""Providers and OAuth accounts in the admin, in a real headless Chromium against a real server: a provider made
from a preset (kind and URL filled, effective capabilities shown), and an Anthropic OAuth account connected
through the Connect page (authorize URL shown, code pasted, tokens never shown)."""

import re
import secrets

import httpx
import pytest
from django.contrib.auth.models import User

from accounts.models import Provider, ProviderAccount
from tests.conftest import start_gateway, stop_gateway
from tests.fakes.upstream import FakeUpstream

from .webdriver import Browser, missing

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def fake():
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def server(gateway_server, fake, tmp_path_factory):
    """A gateway whose OAuth endpoints are the fake's (the session's server talks to the real ones)."""
    env = {"GATEWAY_OAUTH_AUTHORIZE_URL": fake.url + "/oauth/authorize",
           "GATEWAY_OAUTH_TOKEN_URL": fake.url + "/v1/oauth/token"}  # fmt: skip
    running = start_gateway(extra_env=env, tmp_dir=tmp_path_factory.mktemp("providers-browser"))
    yield running
    stop_gateway(running)


@pytest.fixture
def signed_in(server, committed):
    reason = missing()
    if reason:
        pytest.skip(reason)
    tag = secrets.token_hex(4)
    password = secrets.token_urlsafe(16)
    user = User.objects.create_superuser(f"browser-{tag}", password=password)
    browser = Browser(server.url)
    browser.get("/admin/login/?next=/admin/")
    browser.type("#id_username", user.username)
    browser.type("#id_password", password)
    browser.submit("input[type=submit]")
    yield browser, tag
    browser.quit()
    Provider.objects.filter(name__endswith=tag).delete()
    user.delete()


def test_a_provider_from_a_preset_in_a_real_browser(signed_in):
    browser, tag = signed_in
    browser.get("/admin/accounts/provider/add/")
    browser.type("#id_name", f"ds-{tag}")
    browser.click("#id_preset option[value=deepseek]")
    browser.type("#id_capabilities", '{"images": true}')
    browser.submit("input[name=_save]")
    assert "was added successfully" in browser.source, browser.text("#content-main")
    provider = Provider.objects.get(name=f"ds-{tag}")
    assert (provider.kind, provider.base_url) == ("openai", "https://api.deepseek.com/v1")
    browser.get(f"/admin/accounts/provider/{provider.pk}/change/")
    table = browser.text("table.capabilities")
    assert "reasoning_echo True" in table and "images True" in table  # the preset, with the override applied


def test_connecting_an_oauth_account_in_a_real_browser(signed_in, fake):
    browser, tag = signed_in
    provider = Provider.objects.create(name=f"oa-{tag}", preset="anthropic", kind="anthropic", base_url=fake.url)
    account = ProviderAccount.objects.create(provider=provider, name="sub", kind="anthropic_oauth", enabled=False)
    browser.get(f"/admin/accounts/provideraccount/{account.pk}/change/")
    browser.submit("a.button[href$='/connect/']")
    assert "terms of use" in browser.text("#oauth-connect")
    url = browser._s("GET", f"/element/{browser.find('#authorize-url')}/property/href")
    assert re.search(r"code_challenge=[\w-]{43}", url)
    code = httpx.get(url).json()["code"]  # what the sign-in page shows
    browser.type("#id_code", code)
    browser.submit("#oauth-connect input[type=submit]")
    assert "Connected" in browser.source
    account.refresh_from_db()
    assert account.credential.startswith("oat-access-") and account.credential not in browser.source
    assert "token expires" in browser.source.lower() and "Reconnect" in browser.source
