"""Panic routing in proxy/selection.py: open accounts are skipped while one account of the route is healthy; when
none is, every account is still offered (half-open first, then by the end of the cooldown) unless the route
or the setting fails fast. And the route's choice travels from the config file to the request path's snapshot."""

import pytest
from django.test import override_settings

from accounts.config import ConfigError
from accounts.services import config_apply
from proxy import selection
from proxy.policies.state import BreakerState
from proxy.routing import Account, Provider, Route, Target

CLOSED = BreakerState("closed", 0, 0.0, "")
HALF = BreakerState("half_open", 5, 0.0, "failures")


def _open(until: float) -> BreakerState:
    return BreakerState("open", 5, until, "failures")


def _route(n_accounts: int, **fields) -> Route:
    accounts = tuple(Account(id=i, name=f"a{i}", credential="k", weight=1, priority=i) for i in range(1, n_accounts + 1))
    provider = Provider(name="p", kind="openai", base_url="http://127.0.0.1:9/v1", connect_timeout=1, read_timeout=1,
                        extra_headers=(), accounts=accounts)
    target = Target(provider=provider, remote_model="m", priority=0, weight=1)
    return Route(alias="r", display_name="", default_max_tokens=None, max_output_tokens=None, targets=(target,),
                 created_at=0, **fields)


def _picked(candidates):
    return [(c.account.id, c.probe, c.panic) for c in candidates]


def test_open_accounts_are_skipped_while_another_is_healthy():
    assert _picked(selection.order(_route(3), {1: _open(9e9), 2: CLOSED, 3: HALF})) == [(2, False, False),
                                                                                        (3, True, False)]


def test_with_every_account_open_all_are_offered_half_open_first_then_by_cooldown_end():
    health = {1: _open(2e9), 2: _open(1e9), 3: HALF}
    assert _picked(selection.order(_route(3), health)) == [(3, False, True), (2, False, True), (1, False, True)]


def test_one_account_open_is_still_offered():
    assert _picked(selection.order(_route(1), {1: _open(9e9)})) == [(1, False, True)]


def test_fail_fast_from_the_route_or_the_setting_offers_only_probes():
    health = {1: _open(9e9), 2: HALF}
    assert _picked(selection.order(_route(2, on_all_open="fail_fast"), health)) == [(2, True, False)]
    with override_settings(GATEWAY_BREAKER_ON_ALL_OPEN="fail_fast"):
        assert _picked(selection.order(_route(2), health)) == [(2, True, False)]
        assert _picked(selection.order(_route(2, on_all_open="panic"), health)) == [(2, False, True), (1, False, True)]


@pytest.mark.django_db
def test_on_all_open_comes_from_the_config_file_and_reaches_the_snapshot(monkeypatch):
    from accounts.models import ModelRoute
    from proxy import routing

    config = {"providers": [{"name": "up", "kind": "openai", "base_url": "http://127.0.0.1:9/v1",
                             "accounts": [{"name": "a", "api_key": "sk-x"}]}],
              "models": [{"alias": "strict", "on_all_open": "fail_fast", "targets": [{"provider": "up", "model": "m"}]},
                         {"alias": "plain", "targets": [{"provider": "up", "model": "m"}]}]}  # fmt: skip
    config_apply(config)
    assert dict(ModelRoute.objects.values_list("alias", "on_all_open")) == {"strict": "fail_fast", "plain": ""}
    monkeypatch.setattr(routing, "close_old_connections", lambda: None)  # it would close this test's transaction
    snap = routing._build()
    assert [selection.fails_fast(snap.exact[a]) for a in ("strict", "plain")] == [True, False]
    with pytest.raises(ConfigError) as error:
        config_apply({**config, "models": [{**config["models"][0], "on_all_open": "refuse"}]})
    assert any(p.startswith("models[0].on_all_open") for p in error.value.problems), error.value.problems
