"""A project's cost-optimization settings in the admin, in a real headless Chromium against the real server: set
them on the project page, see them kept, see a bad value refused, and reach the request path's key snapshot."""

import pytest

from accounts import keys
from accounts.models import Project, ProjectOptimization
from tests.browser.test_admin_browser import superuser  # noqa: F401 (a fixture: its project browser-<tag> goes too)

pytestmark = pytest.mark.browser
PREFIX = "#id_optimization-0-"


def test_cost_optimization_settings_in_a_real_browser(browser, superuser):  # noqa: F811
    username, password, tag = superuser
    project = Project.objects.create(slug=f"browser-{tag}", name=f"Browser {tag}")
    browser.get("/admin/login/?next=/admin/")
    browser.type("#id_username", username)
    browser.type("#id_password", password)
    browser.submit("input[type=submit]")

    browser.get(f"/admin/accounts/project/{project.pk}/change/")
    assert "Cost optimization (every layer off by default)" in browser.source
    browser.type(PREFIX + "response_cache_ttl", "300")
    browser.click(PREFIX + "cache_breakpoints")
    browser.click(PREFIX + "dedupe_tool_results")
    browser.type(PREFIX + "prune_max_tokens", "10")  # below the minimum: refused with the reason
    browser.type(PREFIX + "route_background", "gw-haiku")
    browser.type(PREFIX + "cap_tool_description_chars", "500")
    browser.type(PREFIX + "drop_tools", "Cron*\n*Worktree")
    browser.submit("input[name=_continue]")
    assert "Ensure this value is greater than or equal to 1000" in browser.source
    assert not ProjectOptimization.objects.filter(project=project).exists()

    browser.type(PREFIX + "prune_max_tokens", "50000")
    browser.submit("input[name=_continue]")
    assert "was changed successfully" in browser.source
    row = ProjectOptimization.objects.get(project=project)
    assert (row.response_cache_ttl, row.cache_breakpoints, row.dedupe_tool_results, row.prune_max_tokens,
            row.route_background, row.stable_prefix) == (300, True, True, 50000, "gw-haiku", False)  # fmt: skip
    assert browser.value(PREFIX + "response_cache_ttl") == "300"
    assert (row.cap_tool_description_chars, row.drop_tools.splitlines()) == (500, ["Cron*", "*Worktree"])

    key, secret = keys.key_create(project=project, name="snapshot")
    view = keys.key_load(secret, keys.digest(secret)).optimize
    assert view.response_cache_ttl == 300 and view.cache_breakpoints and view.routes and view.reduces
    assert view.drop_tools == ("Cron*", "*Worktree") and view.cap_tool_description_chars == 500
