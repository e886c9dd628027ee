"""Rate limits and budgets as clients see them, through the real server: headers on every response, refusals
in each caller's own format, the official SDKs' own retry behaviour, and a budget that holds under a race."""

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from decimal import Decimal

import anthropic
import openai
import orjson
import pytest

from tests.e2e import policy_world as pw


@pytest.fixture
def fake_route(world, committed):
    """A route of its own to the OpenAI-compatible fake, and a helper to make keys on projects."""
    alias = pw.route((pw.provider(world.fake), "fake-gpt", 0))
    return alias


def _ready(world, secret, alias):
    pw.wait_for_config(world.url, secret, alias)


def test_rpm_per_key_counts_down_in_the_headers_then_refuses_in_the_openai_format(world, committed, fake_route, ledger):
    secret = pw.key(pw.project(), rpm_limit=2)
    _ready(world, secret, fake_route)  # /v1/models is not a chat request: it takes nothing from the limit
    first = pw.openai_chat(world.url, secret, fake_route)
    second = pw.openai_chat(world.url, secret, fake_route)
    assert first.status_code == second.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert [first.headers["x-ratelimit-remaining-requests"], second.headers["x-ratelimit-remaining-requests"]] == ["1", "0"]
    refused = pw.openai_chat(world.url, secret, fake_route)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and "2 requests per minute" in error["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert ledger(refused.headers["x-request-id"]).outcome == "rate_limited"


def test_rpm_refusal_in_the_anthropic_format_with_anthropic_headers(world, committed, fake_route):
    secret = pw.key(pw.project(), rpm_limit=1)
    _ready(world, secret, fake_route)
    ok = pw.anthropic_chat(world.url, secret, fake_route)
    assert ok.status_code == 200
    assert ok.headers["anthropic-ratelimit-requests-limit"] == "1"
    assert ok.headers["anthropic-ratelimit-requests-remaining"] == "0"
    reset = datetime.fromisoformat(ok.headers["anthropic-ratelimit-requests-reset"].replace("Z", "+00:00"))
    assert 0 < (reset - datetime.now(timezone.utc)).total_seconds() <= 61
    refused = pw.anthropic_chat(world.url, secret, fake_route)
    assert refused.status_code == 429
    assert refused.json() == {"type": "error", "error": {"type": "rate_limit_error", "message": refused.json()["error"]["message"]}}
    with pytest.raises(anthropic.RateLimitError):
        anthropic.Anthropic(base_url=world.url, api_key=secret, max_retries=0).messages.create(
            model=fake_route, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )


def test_a_projects_rpm_is_shared_by_its_keys(world, committed, fake_route):
    proj = pw.project(rpm_limit=2)
    one, two = pw.key(proj), pw.key(proj)
    _ready(world, one, fake_route)
    assert pw.openai_chat(world.url, one, fake_route).status_code == 200
    assert pw.openai_chat(world.url, two, fake_route).status_code == 200
    assert pw.openai_chat(world.url, one, fake_route).status_code == 429
    assert "this project" in pw.openai_chat(world.url, two, fake_route).json()["error"]["message"]


def test_tpm_admits_on_the_estimate_and_settles_on_the_real_count(world, committed, fake_route, ledger):
    secret = pw.key(pw.project(), tpm_limit=5000)
    _ready(world, secret, fake_route)
    body = {"model": fake_route, "max_tokens": 1000, "messages": [{"role": "user", "content": "USAGE: in=30 out=20\nSAY: x"}]}
    raw = orjson.dumps(body)
    estimate = math.ceil(len(raw) / 3) + 1000
    first = _post_raw(world, secret, raw)
    assert first.status_code == 200
    assert int(first.headers["x-ratelimit-remaining-tokens"]) == 5000 - estimate
    # Once settled, the first request counts its real 50 tokens, not its estimate. The settle runs in the
    # background right after the answer; the ledger row (written a flush interval later) says it is done.
    ledger(first.headers["x-request-id"])
    time.sleep(0.2)
    second = _post_raw(world, secret, raw)
    assert int(second.headers["x-ratelimit-remaining-tokens"]) == 5000 - 50 - estimate
    too_big = _post_raw(world, secret, orjson.dumps({**body, "max_tokens": 6000}))
    assert too_big.status_code == 429 and "tokens per minute" in too_big.json()["error"]["message"]


def _post_raw(world, secret, raw: bytes):
    import httpx

    return httpx.post(
        world.url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {secret}", "content-type": "application/json"},
        content=raw,
        timeout=30,
    )


def test_concurrency_cap_refuses_then_the_openai_sdk_retries_by_itself(world, committed, fake_route):
    secret = pw.key(pw.project(), max_concurrent=1)
    _ready(world, secret, fake_route)
    slow = threading.Thread(target=pw.openai_chat, args=(world.url, secret, fake_route, "SLOW: 1500\nSAY: slow"))
    slow.start()
    time.sleep(0.4)
    try:
        client = openai.OpenAI(base_url=world.url + "/v1", api_key=secret, max_retries=0)
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model=fake_route, messages=[{"role": "user", "content": "SAY: now"}])
        assert "concurrent requests" in str(refused.value)
        # With retries on, the SDK waits out retry-after and gets through once the slow request has ended.
        patient = openai.OpenAI(base_url=world.url + "/v1", api_key=secret, max_retries=4)
        answer = patient.chat.completions.create(model=fake_route, messages=[{"role": "user", "content": "SAY: later"}])
        assert answer.choices[0].message.content == "later"
    finally:
        slow.join()


def _reservation_nanos(raw: bytes, max_tokens: int, input_price: Decimal, output_price: Decimal) -> int:
    cost = (math.ceil(len(raw) / 3) * input_price + max_tokens * output_price) / Decimal(1_000_000)
    return math.ceil(cost * 100_000_000)


def test_fifty_parallel_requests_against_a_budget_that_fits_ten(world, committed, ledger):
    """Each request reserves its maximum cost before the upstream call, so at most 10 are admitted, whatever the
    interleaving, and the ledger's total stays within the budget."""
    from usage.models import UsageRecord

    model = pw.unique("budget-model")
    pw.price(model, "2", "8")
    alias = pw.route((pw.provider(world.fake), model, 0))
    body = {"model": alias, "max_tokens": 100_000,
            "messages": [{"role": "user", "content": "SLOW: 800\nUSAGE: in=1000 out=99000\nSAY: spent"}]}  # fmt: skip
    raw = orjson.dumps(body)
    reservation = _reservation_nanos(raw, 100_000, Decimal(2), Decimal(8))
    budget = (Decimal(reservation * 10) / 100_000_000 + Decimal("0.005")).quantize(Decimal("0.01"))
    assert budget * 100_000_000 < reservation * 11  # fits ten, not eleven
    proj = pw.project(monthly_budget_usd=budget)
    secret = pw.key(proj)
    pw.wait_for_config(world.url, secret, alias)

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(lambda _: _post_raw(world, secret, raw), range(50)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 10, statuses
    refused = [r for r in responses if r.status_code != 200]
    assert {r.status_code for r in refused} == {429}
    assert {r.json()["error"]["code"] for r in refused} == {"insufficient_quota"}
    assert all(r.headers.get("x-should-retry") == "false" for r in refused)
    assert f"monthly budget of project {proj.slug}" in refused[0].json()["error"]["message"]
    for response in responses:
        ledger(response.headers["x-request-id"])  # every one of the 50 is in the ledger
    rows = UsageRecord.objects.filter(project_id=proj.id)
    assert rows.count() == 50
    assert rows.filter(outcome="budget_exceeded").count() == 40
    spent = sum(r.cost_usd for r in rows)
    assert spent == 10 * (Decimal(1000) * 2 + Decimal(99000) * 8) / 1_000_000
    assert spent <= budget


def test_budget_refusal_in_the_anthropic_format_names_the_budget_and_its_reset(world, committed):
    model = pw.unique("budget-model")
    pw.price(model, "1000", "1000")  # $1,000 per Mtok: one request is a cent or more
    alias = pw.route((pw.provider(world.fake), model, 0))
    proj = pw.project(daily_budget_usd=Decimal("0.01"))
    secret = pw.key(proj)
    pw.wait_for_config(world.url, secret, alias)
    refused = pw.anthropic_chat(world.url, secret, alias, max_tokens=1000)
    assert refused.status_code == 402
    error = refused.json()["error"]
    assert error["type"] == "billing_error"
    tomorrow = datetime.now(timezone.utc).date().toordinal() + 1
    assert "daily budget" in error["message"]
    assert datetime.fromordinal(tomorrow).strftime("%Y-%m-%dT00:00:00Z") in error["message"]
    with pytest.raises(anthropic.APIStatusError) as raised:  # not retried by the SDK: one request only
        anthropic.Anthropic(base_url=world.url, api_key=secret, max_retries=2).messages.create(
            model=alias, max_tokens=1000, messages=[{"role": "user", "content": "hi"}]
        )
    assert raised.value.status_code == 402


def test_a_keys_budget_stops_that_key_only(world, committed, ledger):
    from usage.models import UsageRecord

    model = pw.unique("budget-model")
    pw.price(model, "100", "100")
    alias = pw.route((pw.provider(world.fake), model, 0))
    proj = pw.project(monthly_budget_usd=Decimal("100"))
    tight, free = pw.key(proj, monthly_budget_usd=Decimal("0.01")), pw.key(proj)
    pw.wait_for_config(world.url, tight, alias)
    text = "USAGE: in=30 out=30\nSAY: ok"  # $0.006 each; a second one would not fit the key's $0.01
    assert pw.openai_chat(world.url, tight, alias, text, max_tokens=20).status_code == 200
    refused = pw.openai_chat(world.url, tight, alias, text, max_tokens=20)
    assert refused.status_code == 429 and "API key" in refused.json()["error"]["message"]
    other = pw.openai_chat(world.url, free, alias, text, max_tokens=20)
    assert other.status_code == 200
    ledger(other.headers["x-request-id"])  # written (the writer is asynchronous)
    tight_rows = UsageRecord.objects.filter(project_id=proj.id, outcome="ok").order_by("created_at")
    assert [r.cost_usd for r in tight_rows] == [Decimal("0.006"), Decimal("0.006")]  # one per key


def test_api_responses_carry_the_security_headers(world):
    response = pw.openai_chat(world.url, world.keys["alpha"], "gw-openai")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    error = pw.openai_chat(world.url, "gh_not-a-real-key-at-all-0000", "gw-openai")
    assert error.status_code == 401 and error.headers["x-content-type-options"] == "nosniff"


def test_no_limit_headers_when_no_limit_is_set(world):
    response = pw.openai_chat(world.url, world.keys["alpha"], "gw-openai")
    assert not any(name.startswith("x-ratelimit") for name in response.headers)


def test_a_long_context_request_reserves_at_the_long_context_rates(world, committed):
    """budgets.max_cost prices the reservation with usage.pricing: a prompt estimated above the price's
    long-context threshold reserves at the tier's rates, so a budget that fits the base rate but not the tier
    refuses it before it reaches the upstream."""
    from datetime import timedelta

    from django.utils import timezone

    from usage.models import ModelPrice

    model = pw.unique("long-model")
    ModelPrice.objects.create(
        model=model, effective_from=timezone.localdate() - timedelta(days=1), input_per_mtok=Decimal(1),
        output_per_mtok=Decimal(1), long_context_threshold=10, long_input_per_mtok=Decimal(100_000),
        long_output_per_mtok=Decimal(100_000), long_cache_read_per_mtok=Decimal(0), long_cache_write_per_mtok=Decimal(0),
    )  # fmt: skip
    alias = pw.route((pw.provider(world.fake), model, 0))
    secret = pw.key(pw.project(daily_budget_usd=Decimal("0.01")))
    pw.wait_for_config(world.url, secret, alias)
    # ~60 prompt tokens by the byte estimate and 20 output: $0.00008 at the base rate, $8 at the tier's.
    refused = pw.openai_chat(world.url, secret, alias, "SAY: ok", max_tokens=20)
    assert refused.status_code == 429, refused.text
    assert "daily budget" in refused.json()["error"]["message"]
