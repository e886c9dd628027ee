"""The policy rules that need no server: the outcome classification table, backoff, selection order, limit
headers in both formats, budget periods and money units."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from proxy import attempts, selection
from proxy.canonical import Limits, LimitState
from proxy.formats import anthropic, openai
from proxy.policies import budgets, output_ceiling
from proxy.policies.state import BreakerState
from proxy.routing import Account, Provider, Route, Target


@pytest.mark.parametrize(
    "status, headers, retry, health",
    [
        (429, {}, True, "cooldown"),
        (529, {}, True, "failure"),
        (503, {}, True, "failure"),
        (500, {}, True, "failure"),
        (408, {}, True, "failure"),
        (401, {}, True, "credential"),
        (403, {}, True, "credential"),
        (400, {}, False, "none"),
        (404, {}, False, "none"),
        (413, {}, False, "none"),
        (422, {}, False, "none"),
        (500, {"x-should-retry": "false"}, False, "failure"),
        (400, {"x-should-retry": "true"}, True, "none"),
        (401, {"x-should-retry": "false"}, True, "credential"),  # another account may still serve it
    ],
)
def test_classification_table(status, headers, retry, health):
    verdict = attempts.classify(status, headers)
    assert (verdict.retry, verdict.health) == (retry, health)
    assert verdict.same_account == (health != "credential")


@pytest.mark.parametrize(
    "headers, seconds",
    [({"retry-after-ms": "1500", "retry-after": "9"}, 1.5), ({"retry-after": "2"}, 2.0), ({"retry-after": "Wed, 21 Oct"}, None), ({}, None)],
)
def test_retry_after_prefers_milliseconds(headers, seconds):
    assert attempts.retry_after_seconds(headers) == seconds


def test_backoff_is_jittered_exponential_and_capped():
    policy = attempts.RetryPolicy(max_attempts=5, base_s=0.1, cap_s=0.3, deadline_s=10)
    for n, ceiling in [(1, 0.1), (2, 0.2), (3, 0.3), (6, 0.3)]:
        draws = [policy.backoff(n) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in draws)
        assert max(draws) > ceiling * 0.7  # full jitter reaches near the ceiling


def _route(strategy="priority"):
    one = Provider("one", "openai", "http://x", 1, 1, (), (Account(1, "a", "k", 1, 0), Account(2, "b", "k", 1, 1)))
    two = Provider("two", "openai", "http://y", 1, 1, (), (Account(3, "c", "k", 1, 0),))
    return Route("m", "m", None, None, (Target(one, "x", 0, 1), Target(two, "y", 1, 1)), 0, strategy, account_ids=(1, 2, 3))


def test_priority_order_and_health_first():
    route = _route()
    assert [c.account.id for c in selection.order(route, {})] == [1, 2, 3]
    health = {1: BreakerState("open", 5, 9e9, "failures"), 2: BreakerState("half_open", 5, 1, "failures")}
    ordered = selection.order(route, health)
    assert [(c.account.id, c.probe) for c in ordered] == [(3, False), (2, True)]  # open skipped, probe last


def test_round_robin_rotates_and_least_busy_avoids_busy_accounts():
    route = _route("round_robin")
    firsts = [selection.order(route, {})[0].account.id for _ in range(6)]
    assert sorted(set(firsts)) == [1, 2, 3] and firsts[:3] != firsts[1:4]
    busy_route = _route("least_busy")
    selection.busy(1, +1)
    try:
        assert selection.order(busy_route, {})[0].account.id == 2
    finally:
        selection.busy(1, -1)


def test_limit_headers_in_each_format():
    limits = Limits(requests=LimitState(60, 59, 1.0), tokens=LimitState(1000, 10, 90.4))
    now = datetime(2026, 11, 29, 12, 0, 0, tzinfo=timezone.utc).timestamp()
    assert anthropic.render_limit_headers(limits, now) == {
        "anthropic-ratelimit-requests-limit": "60",
        "anthropic-ratelimit-requests-remaining": "59",
        "anthropic-ratelimit-requests-reset": "2026-11-29T12:00:01Z",
        "anthropic-ratelimit-tokens-limit": "1000",
        "anthropic-ratelimit-tokens-remaining": "10",
        "anthropic-ratelimit-tokens-reset": "2026-11-29T12:01:30Z",
    }
    assert openai.render_limit_headers(limits, now) == {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "10",
        "x-ratelimit-reset-tokens": "1m30s",
    }
    assert openai.render_limit_headers(Limits(requests=LimitState(5, 0, 0.25)), now)["x-ratelimit-reset-requests"] == "250ms"
    assert anthropic.render_limit_headers(Limits(), now) == {}


def test_budget_periods_are_calendar_month_and_day_in_utc():
    periods = budgets.periods(datetime(2026, 12, 31, 23, 59, tzinfo=timezone.utc))
    assert periods["m"][0] == "2026-12" and periods["m"][2] == datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert periods["d"][0] == "2026-12-31" and periods["d"][2] == datetime(2027, 1, 1, tzinfo=timezone.utc)
    feb = budgets.periods(datetime(2028, 2, 10, tzinfo=timezone.utc))["m"]
    assert feb[2] == datetime(2028, 3, 1, tzinfo=timezone.utc)  # a leap year's February


def test_money_is_counted_in_exact_integer_units():
    assert budgets.nanos(Decimal("0.00000001")) == 1
    assert budgets.nanos(Decimal("12.34")) == 1_234_000_000
    assert budgets.nanos(Decimal("0.000000011")) == 2  # rounds up: a reservation never undershoots


def test_output_ceiling_uses_the_request_then_the_route_and_clamps():
    route = Route("m", "m", 2048, 1000, (), 0)
    assert output_ceiling({"max_tokens": 500}, route) == 500
    assert output_ceiling({"max_completion_tokens": 5000}, route) == 1000
    assert output_ceiling({}, route) == 1000
    assert output_ceiling({"max_tokens": "lots"}, Route("m", "m", 300, None, (), 0)) == 300
