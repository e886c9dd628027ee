"""The Providers list's health column (proxy/admin.py provider_health): each provider from its accounts' breakers,
cooldowns and newest error, in the words gateway_status uses (proxy.breaker.account_health)."""

from datetime import timedelta

from django.utils import timezone
from django.utils.html import strip_tags

from accounts.models import Provider, ProviderAccount
from proxy.admin import provider_health
from proxy.policies.state import BreakerState

NOW = timezone.now()
OPEN = BreakerState("open", 5, NOW.timestamp() + 30, "auth")


def _health(accounts, states=None, enabled=True) -> str:
    return strip_tags(provider_health(Provider(name="p", enabled=enabled), accounts, states or {}, NOW))


def _account(pk, name, **fields):
    return ProviderAccount(id=pk, name=name, **fields)


def test_every_enabled_account_healthy_is_ok_and_disabled_ones_do_not_count():
    text = _health([_account(1, "a"), _account(2, "b"), _account(3, "off", enabled=False)])
    assert text == "ok · 2 of 2 accounts healthy"


def test_an_open_breaker_or_a_cooldown_degrades_and_says_why():
    accounts = [_account(1, "a"), _account(2, "b", cooldown_until=NOW + timedelta(minutes=5)), _account(3, "c")]
    text = _health(accounts, {3: OPEN})
    assert text.startswith("degraded · 1 of 3 accounts healthy")
    assert f"b: cooling down until {accounts[1].cooldown_until:%H:%M} UTC" in text and "c: open (auth)" in text


def test_none_healthy_is_down_with_the_newest_error_and_its_age():
    accounts = [_account(1, "a", last_error="HTTP 401: invalid x-api-key", last_error_at=NOW - timedelta(hours=2)),
                _account(2, "b", last_error="timed out after 10 s", last_error_at=NOW - timedelta(minutes=3))]
    text = _health(accounts, {1: OPEN, 2: BreakerState("half_open", 1, 0, "failures")})
    assert text.startswith("down · 0 of 2 accounts healthy")
    assert "a: open (auth)" in text and "b: half-open (failures)" in text
    assert text.endswith("last error 3\xa0minutes ago, b: timed out after 10 s")


def test_a_long_error_is_cut_on_screen_and_whole_on_hover():
    error = "HTTP 500: " + "x" * 300
    html = str(provider_health(Provider(name="p"), [_account(1, "a", last_error=error, last_error_at=NOW)], {}, NOW))
    assert f'title="{error}"' in html and "just now, a: HTTP 500: " in html and "x" * 60 not in strip_tags(html)


def test_a_provider_off_or_without_accounts_says_so():
    assert _health([_account(1, "a")], enabled=False) == "disabled"
    assert _health([]) == "no accounts"
