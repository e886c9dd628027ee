"""The browser every page test drives: headless Chromium through chromedriver, against the session's gateway."""

import os

import pytest

from .webdriver import Browser, missing


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
