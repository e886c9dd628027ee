"""Reconciliation is a test, not a hope (issue 9): a mixed set of requests through the real server (cached and
uncached input, streamed and not, both APIs, same-API and translated routes, errors), then

  Σ row cost = Σ each row's tokens × the price in effect on its day, to the last decimal (computed here
               independently of usage.pricing; a request whose prompt passes its price's long-context threshold
               pays the tier's rates, one exactly at the threshold the base rates), and
  every rollup total = Σ of the ledger rows it covers (usage.services.rollup_day), and the finance report
               shows those same totals.

Runs on whichever database the suite uses (CI: SQLite, then PostgreSQL)."""

import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import anthropic
import openai
import pytest

from usage import report, services
from usage.models import DailyRollup, ModelPrice, UsageRecord

# A day no other test writes ledger rows on: the requests' rows are moved there before the rollup.
RECONCILE_DAY = date(2001, 3, 14)
# Passed through to the fake Anthropic upstream by the world's `native-*` route; priced with a long-context tier
# (Claude Sonnet 4.5's card: above 200k prompt tokens every token pays 2x input and cache rates, 1.5x output).
LONG_MODEL = "native-reconcile-long"
LONG_TIER = {"long_context_threshold": 200_000, "long_input_per_mtok": 6, "long_output_per_mtok": "22.5",
             "long_cache_read_per_mtok": "0.6", "long_cache_write_per_mtok": "7.5", "long_cache_write_1h_per_mtok": 12}


@pytest.fixture
def long_context_price(ledger):
    """LONG_MODEL's price, committed before the requests (the gateway reloads prices every 0.5 s in tests)."""
    ModelPrice.objects.filter(model=LONG_MODEL).delete()
    ModelPrice.objects.create(model=LONG_MODEL, effective_from=date(2000, 1, 1), input_per_mtok=3, output_per_mtok=15,
                              cache_read_per_mtok="0.3", cache_write_per_mtok="3.75", cache_write_1h_per_mtok=6,
                              **LONG_TIER)  # fmt: skip
    time.sleep(0.6)
    yield
    ModelPrice.objects.filter(model=LONG_MODEL).delete()


def _requests(world) -> list[str]:
    """The mixed traffic; returns the request ids the gateway answered with."""
    ids = []
    a, o = world.anthropic(), world.openai()
    m = a.messages.with_raw_response.create(model="gw-anthropic", max_tokens=64, messages=[
        {"role": "user", "content": "reconcile 1 USAGE: in=1200 out=340 cache_read=5000 cache_write=800"}])  # fmt: skip
    ids.append(m.headers["request-id"])
    with a.messages.stream(model="gw-anthropic", max_tokens=64, messages=[
            {"role": "user", "content": "reconcile 2 USAGE: in=17 out=9"}]) as s:  # fmt: skip
        s.until_done()
        ids.append(s.response.headers["request-id"])
    c = o.chat.completions.with_raw_response.create(model="gw-openai", messages=[
        {"role": "user", "content": "reconcile 3 USAGE: in=2000 out=150 cache_read=1024"}])  # fmt: skip
    ids.append(c.headers["x-request-id"])
    with o.chat.completions.with_streaming_response.create(model="gw-openai", stream=True, messages=[
            {"role": "user", "content": "reconcile 4 USAGE: in=333 out=77 cache_read=2048"}]) as r:  # fmt: skip
        list(r.iter_lines())
        ids.append(r.headers["x-request-id"])
    with a.messages.stream(model="claude-reconcile", max_tokens=64, messages=[  # Anthropic in, OpenAI upstream
            {"role": "user", "content": "reconcile 5 USAGE: in=4321 out=123 cache_read=1500"}]) as s:  # fmt: skip
        s.until_done()
        ids.append(s.response.headers["request-id"])
    c = o.chat.completions.with_raw_response.create(model="gpt-reconcile", messages=[  # OpenAI in, Anthropic upstream
        {"role": "user", "content": "reconcile 6 USAGE: in=900 out=45 cache_read=7000 cache_write=2500"}])  # fmt: skip
    ids.append(c.headers["x-request-id"])
    for model, script, client in (("gw-openai", "FAIL: 500", o), ("gw-anthropic", "FAIL: 400", a)):
        try:
            if client is o:
                o.chat.completions.create(model=model, messages=[{"role": "user", "content": f"reconcile {script}"}])
            else:
                a.messages.create(model=model, max_tokens=8, messages=[{"role": "user", "content": f"reconcile {script}"}])
        except (openai.APIStatusError, anthropic.APIStatusError) as e:
            ids.append(e.response.headers.get("x-request-id") or e.response.headers["request-id"])
    try:
        o.chat.completions.create(model="no-such-model-reconcile", messages=[{"role": "user", "content": "x"}])
    except openai.NotFoundError as e:
        ids.append(e.response.headers["x-request-id"])
    # Long-context tier (LONG_MODEL's price): a prompt of exactly the threshold, then one token more.
    for n, fresh in ((8, 150_000), (9, 150_001)):
        m = a.messages.with_raw_response.create(model=LONG_MODEL, max_tokens=64, messages=[
            {"role": "user", "content": f"reconcile {n} USAGE: in={fresh} out=1000 cache_read=45000 cache_write=5000"}])  # fmt: skip
        ids.append(m.headers["request-id"])
    with pytest.raises(anthropic.APIStatusError):  # a stream that breaks after three deltas
        with a.messages.stream(model="gw-anthropic", max_tokens=64, messages=[
                {"role": "user", "content": "reconcile 7 FAIL: midstream"}]) as s:  # fmt: skip
            ids.append(s.response.headers["request-id"])
            s.until_done()
    return ids


def _expected_cost(row: UsageRecord) -> Decimal:
    price = (ModelPrice.objects.filter(model=row.remote_model, effective_from__lte=row.created_at.date())
             .order_by("-effective_from").first())  # fmt: skip
    if price is None:
        return Decimal(0)
    # The vendors' rule, restated here rather than imported: a prompt (input + cache reads + cache writes) above
    # the threshold puts every token of the request on the long-context rates.
    prompt = row.input_tokens + row.cache_read_tokens + row.cache_write_tokens
    long = price.long_context_threshold is not None and prompt > price.long_context_threshold
    pre = "long_" if long else ""
    rate = {f: getattr(price, pre + f) for f in ("input_per_mtok", "output_per_mtok", "cache_read_per_mtok",
                                                 "cache_write_per_mtok", "cache_write_1h_per_mtok")}  # fmt: skip
    uncached_write = row.cache_write_tokens - row.cache_write_1h_tokens
    one_hour_rate = rate["cache_write_1h_per_mtok"] if rate["cache_write_1h_per_mtok"] is not None else rate["cache_write_per_mtok"]
    micro = (row.input_tokens * rate["input_per_mtok"] + row.output_tokens * rate["output_per_mtok"]
             + row.cache_read_tokens * rate["cache_read_per_mtok"] + uncached_write * rate["cache_write_per_mtok"]
             + row.cache_write_1h_tokens * one_hour_rate)  # fmt: skip
    return (micro / 1_000_000).quantize(Decimal("0.00000001"))


def test_ledger_costs_rollups_and_report_reconcile(world, ledger, long_context_price):
    ids = _requests(world)
    assert len(ids) == 12 and len(set(ids)) == 12
    rows = [ledger(i) for i in ids]
    by_outcome = {r.outcome for r in rows}
    assert {"ok", "upstream_error", "client_error"} <= by_outcome
    assert any(r.cache_read_tokens for r in rows if r.ingress_api == "openai")  # cached OpenAI input seen
    assert any(r.cache_write_tokens for r in rows if r.ingress_api == "anthropic")
    assert {r.stream for r in rows} == {True, False}

    for r in rows:
        assert r.cost_usd == _expected_cost(r), (r.request_id, r.outcome, r.cost_usd)
    assert sum(r.cost_usd for r in rows) == sum(_expected_cost(r) for r in rows)
    assert sum(r.cost_usd for r in rows) > 0
    assert next(r for r in rows if "no-such" in r.alias or r.http_status == 404).cost_usd == 0
    at, above = (r for r in rows if r.remote_model == LONG_MODEL)
    assert (at.input_tokens + at.cache_read_tokens + at.cache_write_tokens, at.cost_usd) == (200_000, Decimal("0.49725"))
    assert (above.input_tokens, above.cost_usd) == (150_001, Decimal("0.987006"))  # the tier's rates on every token

    # Move the rows to a day of their own, roll it up, and compare every rollup with the rows it covers.
    start = datetime.combine(RECONCILE_DAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
    for n, r in enumerate(rows):
        UsageRecord.objects.filter(pk=r.pk).update(created_at=start + timedelta(minutes=n))
    services.rollup_day(RECONCILE_DAY)
    rollups = list(DailyRollup.objects.filter(day=RECONCILE_DAY))
    assert sum(x.requests for x in rollups) == len(rows)
    for x in rollups:
        covered = [r for r in rows if (r.project_id, r.api_key_id, r.alias, r.remote_model, r.provider)
                   == (x.project_id, x.api_key_id, x.alias, x.model, x.provider)]  # fmt: skip
        assert x.requests == len(covered)
        assert x.cost_usd == sum(r.cost_usd for r in covered)
        for field in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
            assert getattr(x, field) == sum(getattr(r, field) for r in covered), field
        assert x.ok == sum(r.outcome == "ok" for r in covered)
    assert sum(x.cost_usd for x in rollups) == sum(r.cost_usd for r in rows)

    shown = report.finance_report(report.Query(first=RECONCILE_DAY, last=RECONCILE_DAY, group="model"))
    assert shown.total.cost == sum(r.cost_usd for r in rows)
    assert shown.total.requests == len(rows)
    assert shown.total.errors == sum(r.outcome not in ("ok", "cache_hit") for r in rows)
    assert shown.raw_days == []  # the day came from its rollup
    UsageRecord.objects.filter(pk__in=[r.pk for r in rows]).delete()
    DailyRollup.objects.filter(day=RECONCILE_DAY).delete()
