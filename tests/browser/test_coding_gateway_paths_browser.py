"""The Coding Gateway's /admin/* JSON paths (gateway_site/coding_gateway.py) share /admin/ with the Django admin: a
real headless Chromium, logged in, still gets the admin's pages on those paths, the usage app's included."""

import pytest

pytestmark = pytest.mark.browser


def test_a_logged_in_browser_gets_the_admin_on_the_coding_gateway_paths(browser, staff):
    browser.get("/admin/usage/")  # anonymous: the admin's login, not the JSON endpoint's 403
    assert "/admin/login/" in browser.url and "detail" not in browser.source
    browser.type("#id_username", staff[0])
    browser.type("#id_password", staff[1])
    browser.submit("input[type=submit]")
    assert browser.url.endswith("/admin/usage/") and "Log out" in browser.source
    assert "/admin/usage/usagerecord/" in browser.source  # the usage app's own page

    browser.get("/admin/usage")  # the JSON path without its key: the admin's slash redirect
    assert browser.url.endswith("/admin/usage/") and "Admin API key required" not in browser.source
    browser.get("/admin/usage/usagerecord/")
    assert "Log out" in browser.source and "Admin API key required" not in browser.source
    browser.get("/admin/projects")  # no such admin page: the site's own 404 (gateway_site/health.py), as before
    assert "No route for GET /admin/projects" in browser.source and "Admin API key required" not in browser.source
