"""The admin in a real headless Chromium against the real server (daphne): log in, create a project and a key,
read the secret from the page exactly once, revoke the key with the bulk action."""

import os
import re
import secrets

import pytest
from django.contrib.auth.models import User

from accounts import keys
from accounts.models import ApiKey, Project

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
