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
