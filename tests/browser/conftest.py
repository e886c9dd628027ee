"""The browser every page test drives: headless Chromium through chromedriver, against the session's gateway."""

import pytest

from .webdriver import Browser, require


@pytest.fixture
def browser(request):
    require()
    b = Browser(request.getfixturevalue("gateway_server").url)
    yield b
    b.quit()
