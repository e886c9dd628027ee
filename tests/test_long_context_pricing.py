"""The long-context price tier (usage.pricing.tier): a request whose prompt (input + cache read + cache write
tokens) is above a price's threshold pays the tier's rates on every token, output included; exactly at the
threshold it pays the base rates. Unit tests of the boundary here; the tier through the real server and the ledger
is tests/e2e/test_reconciliation.py, the management API round trip tests/e2e/test_management_api.py."""

import io
import json
from datetime import date
from decimal import Decimal

import pytest
import yaml
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from accounts.config import ConfigError, config_parse
from proxy.canonical import Usage
from proxy.routing import Snapshot
from usage import pricing, services
from usage.models import ModelPrice

D = Decimal
# Claude Sonnet 4.5's published card: 1M-window requests above 200k prompt tokens pay 2x input (and cache
# rates likewise) and 1.5x output.
SONNET = pricing.Rates(
    input=D(3), output=D(15), cache_read=D("0.3"), cache_write=D("3.75"), cache_write_1h=D(6), batch_discount=D("0.5"),
    long_threshold=200_000, long_input=D(6), long_output=D("22.5"), long_cache_read=D("0.6"),
    long_cache_write=D("7.5"), long_cache_write_1h=D(12),
)  # fmt: skip


def _cost(price=SONNET, *, inp=0, out=0, read=0, write=0, write_1h=0, batch=False) -> Decimal:
    return pricing.cost(input_tokens=inp, output_tokens=out, cache_read=read, cache_write=write,
                        cache_write_1h=write_1h, price=price, batch=batch)  # fmt: skip


def test_exactly_at_the_threshold_is_the_base_tier_one_token_above_is_the_long_tier():
    assert _cost(inp=200_000, out=1000) == D("0.61500000")  # 200k × 3 + 1k × 15
    assert _cost(inp=200_001, out=1000) == D("1.22250600")  # 200,001 × 6 + 1k × 22.5: every token, output too


def test_cache_reads_and_writes_count_towards_the_threshold_and_are_scaled_in_the_tier():
    at = _cost(inp=100_000, read=90_000, write=10_000, write_1h=4000, out=100)
    assert at == D("0.37500000")  # 100k × 3 + 90k × 0.3 + 6k × 3.75 + 4k × 6 + 100 × 15
    above = _cost(inp=100_001, read=90_000, write=10_000, write_1h=4000, out=100)
    assert above == D("0.74925600")  # 100,001 × 6 + 90k × 0.6 + 6k × 7.5 + 4k × 12 + 100 × 22.5
    # The same prompt made of cache reads alone crosses too (vendors count the whole prompt, not fresh input).
    assert _cost(read=200_001) == D("0.12000060")


def test_batch_discount_applies_on_top_of_the_tier():
    assert _cost(inp=200_001, out=1000, batch=True) == D("0.61125300")  # half of 1.222506
    assert _cost(inp=200_000, out=1000, batch=True) == D("0.30750000")


def test_an_empty_one_hour_tier_rate_is_the_tier_cache_write_rate():
    price = pricing.Rates(input=D(1), output=D(1), cache_read=D(1), cache_write=D(1), long_threshold=10,
                          long_input=D(0), long_output=D(0), long_cache_read=D(0), long_cache_write=D(2))  # fmt: skip
    assert _cost(price, write=1000, write_1h=1000) == D("0.00200000")


def test_prices_without_a_tier_are_one_tier_whatever_the_prompt():
    flat = pricing.Rates(input=D(3), output=D(15), cache_read=D("0.3"), cache_write=D("3.75"))
    assert _cost(flat, inp=900_000) == D("2.70000000")
    # The request path's snapshot prices with Rates given only the base rates (defaults are one tier)...
    since = date(2025, 1, 1)
    snapshot = Snapshot(exact={}, patterns=[], prices={"m": [(since, flat)], "t": [(since, SONNET)]})
    old_style = snapshot.price("m", date(2025, 6, 1))
    assert pricing.usage_cost(Usage(input_tokens=900_000), old_style) == D("2.70000000")
    # ...and takes the tier the same way: usage_cost is the one place the tier is chosen.
    tiered = snapshot.price("t", date(2025, 6, 1))
    assert snapshot.price("t", date(2024, 12, 31)) is None  # not yet in effect
    long_usage = Usage(input_tokens=150_000, output_tokens=1000, cache_read_tokens=45_000, cache_write_tokens=5001)
    assert pricing.usage_cost(long_usage, tiered) == _cost(inp=150_000, out=1000, read=45_000, write=5001)
    assert pricing.usage_cost(long_usage, tiered, batch=True) == D("0.49350375")  # (0.9 + .0225 + .027 + .0375075) / 2


@pytest.mark.django_db
def test_a_model_price_row_carries_the_tier_and_cannot_be_half_filled():
    row = ModelPrice.objects.create(model="m", effective_from=date(2026, 1, 1), input_per_mtok=3, output_per_mtok=15,
                                    long_context_threshold=200_000, long_input_per_mtok=6, long_output_per_mtok="22.5",
                                    long_cache_read_per_mtok="0.6", long_cache_write_per_mtok="7.5")  # fmt: skip
    row.refresh_from_db()
    rates = pricing.rates(row)
    assert (rates.long_threshold, rates.long_output, rates.long_cache_write_1h) == (200_000, D("22.5"), None)
    half = ModelPrice(model="m", effective_from=date(2026, 2, 1), long_context_threshold=200_000, long_input_per_mtok=6)
    with pytest.raises(ValidationError) as raised:
        half.full_clean()
    assert "long_output_per_mtok" in raised.value.message_dict  # the admin form names the field to fill in
    with pytest.raises(IntegrityError), transaction.atomic():  # and the database refuses it whatever writes it
        half.save()
    orphan = ModelPrice(model="m", effective_from=date(2026, 3, 1), long_input_per_mtok=6)
    with pytest.raises(ValidationError) as raised:
        orphan.full_clean()
    assert "long_context_threshold" in raised.value.message_dict


# --- the catalogue file and the config file ---------------------------------------------------------------------


@pytest.mark.django_db
def test_shipped_catalogue_loads_with_its_tiers_and_effective_dated_history():
    call_command("load_prices", stdout=io.StringIO())
    sonnet = pricing.rates(pricing.price_on("claude-sonnet-4-5", date(2026, 6, 1)))
    assert (sonnet.long_threshold, sonnet.long_input, sonnet.long_output) == (200_000, D(6), D("22.5"))
    # Sonnet 4.6 paid the tier from launch until the 1M window went GA at standard rates (2026-03-13).
    assert pricing.rates(pricing.price_on("claude-sonnet-4-6", date(2026, 3, 1))).long_threshold == 200_000
    assert pricing.rates(pricing.price_on("claude-sonnet-4-6", date(2026, 3, 13))).long_threshold is None
    haiku = pricing.rates(pricing.price_on("claude-haiku-5-5", date(2026, 11, 30)))
    assert (haiku.long_threshold, haiku.input, haiku.long_input) == (100_000, D("0.1"), D("0.5"))
    catalogue = json.loads(services.CATALOGUE.read_text())
    assert {e["model"] for e in catalogue["prices"]} <= set(catalogue["sources_by_model"])  # every model has a source
    assert {s for ids in catalogue["sources_by_model"].values() for s in ids} <= set(catalogue["sources"])
    assert all(s["url"].startswith("https://") and s["as_of"] for s in catalogue["sources"].values())


def test_catalogue_entry_with_half_a_tier_is_refused_naming_the_field(tmp_path):
    bad = tmp_path / "bad.json"
    entry = {"model": "x", "effective_from": "2026-01-01", "input_per_mtok": "3", "long_context_threshold": 200000,
             "long_input_per_mtok": "6", "long_output_per_mtok": "22.5", "long_cache_read_per_mtok": "0.6"}  # fmt: skip
    bad.write_text(json.dumps({"prices": [entry]}))
    with pytest.raises(services.CatalogueError, match=r"prices\[0\]\.long_cache_write_per_mtok: required"):
        services.prices_read(bad)
    bad.write_text(json.dumps({"prices": [{**entry, "long_cache_write_per_mtok": "7.5", "long_context_threshold": 2.5}]}))
    with pytest.raises(services.CatalogueError, match=r"prices\[0\]\.long_context_threshold: expected a whole number"):
        services.prices_read(bad)


TIER_YAML = """
prices:
  - model: tiered
    effective_from: 2026-01-01
    input_per_mtok: 3
    output_per_mtok: 15
    cache_read_per_mtok: 0.3
    cache_write_per_mtok: 3.75
    cache_write_1h_per_mtok: 6
    long_context_threshold: 200000
    long_input_per_mtok: 6
    long_output_per_mtok: 22.5
    long_cache_read_per_mtok: 0.6
    long_cache_write_per_mtok: 7.5
    long_cache_write_1h_per_mtok: 12
"""


@pytest.mark.django_db
def test_config_file_round_trip_of_a_tier(tmp_path):
    path = tmp_path / "gatehouse.yaml"
    path.write_text(TIER_YAML)
    call_command("apply_config", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    row = ModelPrice.objects.get(model="tiered")
    assert (row.long_context_threshold, row.long_output_per_mtok, row.long_cache_write_1h_per_mtok) == (
        200_000, D("22.5"), D(12))  # fmt: skip
    out = io.StringIO()
    call_command("apply_config", str(path), stdout=out, stderr=io.StringIO())  # the same file again: no change
    assert ModelPrice.objects.filter(model="tiered").count() == 1
    assert pricing.usage_cost(Usage(input_tokens=200_001), pricing.rates(row)) == D("1.20000600")


@pytest.mark.parametrize("change, message", [
    ({"long_output_per_mtok": None}, "prices[0].long_output_per_mtok: required when long_context_threshold is set"),
    ({"long_context_threshold": None}, "prices[0].long_context_threshold: long-context rates need a threshold"),
    ({"long_context_threshold": "lots"}, "prices[0].long_context_threshold: expected a whole number"),
    ({"long_context_threshold": 0}, "prices[0].long_context_threshold: Ensure this value is greater than or equal to 1"),
    ({"long_input_per_mtok": "six"}, "prices[0].long_input_per_mtok: expected a number"),
])  # fmt: skip
def test_config_tier_errors_name_the_field(change, message):
    data = yaml.safe_load(TIER_YAML)
    item = data["prices"][0]
    for key, value in change.items():
        if value is None:
            del item[key]
        else:
            item[key] = value
    with pytest.raises(ConfigError) as raised:
        config_parse(data, environ={})
    assert any(message in p for p in raised.value.problems), raised.value.problems


def test_catalogue_command_reports_the_bad_tier(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"prices": [{"model": "x", "effective_from": "2026-01-01", "long_input_per_mtok": 1}]}))
    with pytest.raises(CommandError, match=r"prices\[0\]\.long_context_threshold"):
        call_command("load_prices", str(bad))
