"""The admin in a real headless Chromium against the real server (daphne): log in, create a project and a key,
read the secret from the page exactly once, revoke the key with the bulk action."""

import re
import secrets

import pytest
from django.contrib.auth.models import User

from accounts import keys
from accounts.models import ApiKey, Project

pytestmark = pytest.mark.browser


@pytest.fixture
def superuser(committed):
    """Committed, so the server subprocess sees it; everything made under it is removed afterwards."""
    tag = secrets.token_hex(4)
    password = secrets.token_urlsafe(16)
    user = User.objects.create_superuser(f"browser-{tag}", password=password)
    yield user.username, password, tag
    Project.objects.filter(slug=f"browser-{tag}").delete()
    user.delete()


def test_admin_key_lifecycle_in_a_real_browser(browser, superuser):
    username, password, tag = superuser

    browser.get("/admin/login/?next=/admin/")
    browser.type("#id_username", username)
    browser.type("#id_password", password)
    browser.submit("input[type=submit]")
    assert "Gatehouse" in browser.source and "Log out" in browser.source

    browser.get("/admin/accounts/project/add/")
    browser.type("#id_name", f"Browser {tag}")
    browser.type("#id_slug", f"browser-{tag}")
    browser.submit("input[name=_save]")
    assert "was added successfully" in browser.source
    project = Project.objects.get(slug=f"browser-{tag}")

    browser.get(f"/admin/accounts/project/{project.pk}/change/")
    browser.submit(f"a[href$='/admin/accounts/apikey/add/?project={project.pk}']")  # "Create an API key for …"
    assert browser.value("#id_project") == str(project.pk)
    browser.type("#id_name", "laptop")
    browser.submit("input[name=_save]")

    assert "This is the only time the key is shown" in browser.text("#content-main")
    secret = browser.value("#api-key-secret")
    assert re.fullmatch(r"gh_[A-Za-z0-9]{48}", secret)
    key = ApiKey.objects.get(project=project)
    assert key.digest == keys.digest(secret) and key.prefix == secret[:11]

    browser.submit("a[href$='/admin/accounts/apikey/%d/change/']" % key.pk)  # "Done: view the key"
    assert key.prefix in browser.source and secret not in browser.source
    browser.get(f"/admin/accounts/apikey/?q={key.prefix}")
    assert secret not in browser.source and ">active</b>" in browser.source

    browser.click(f"input[name=_selected_action][value='{key.pk}']")
    browser.click("select[name=action] option[value=revoke]")
    browser.submit("button[name=index]")
    assert "Revoked 1 key(s)" in browser.source
    assert ">revoked</b>" in browser.source
    key.refresh_from_db()
    assert key.status == "revoked"


def test_limits_budgets_spend_and_account_health_in_a_real_browser(browser, superuser):
    """A team lead sets a project's limits and budgets, sees this month's spend against them, and reads each
    upstream account's circuit breaker on the account list."""
    from decimal import Decimal

    from accounts.models import Provider, ProviderAccount

    username, password, tag = superuser
    project = Project.objects.create(slug=f"browser-{tag}", name=f"Browser {tag}")
    provider = Provider.objects.create(name=f"browser-{tag}", kind="openai", base_url="http://127.0.0.1:9/v1")
    ProviderAccount.objects.create(provider=provider, name="main")
    browser.get("/admin/login/?next=/admin/")
    browser.type("#id_username", username)
    browser.type("#id_password", password)
    browser.submit("input[type=submit]")

    browser.get(f"/admin/accounts/project/{project.pk}/change/")
    browser.type("#id_rpm_limit", "120")
    browser.type("#id_monthly_budget_usd", "25.00")
    browser.type("#id_daily_budget_usd", "2.50")
    browser.submit("input[name=_continue]")
    assert "was changed successfully" in browser.source
    project.refresh_from_db()
    assert (project.rpm_limit, project.monthly_budget_usd, project.daily_budget_usd) == (
        120, Decimal("25.00"), Decimal("2.50"))
    spend = browser.text("div.field-spend")
    assert "This month: $0.00 of $25.00 (0%)" in spend and "Today: $0.00 of $2.50 (0%)" in spend  # cents

    browser.get(f"/admin/accounts/provideraccount/?q=browser-{tag}")
    assert "CIRCUIT BREAKER" in browser.text("#result_list thead").upper()
    assert "closed" in browser.text("#result_list tbody")
    provider.delete()
