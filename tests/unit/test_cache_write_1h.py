"""One-hour cache writes (issue 9, exact cost): Anthropic reports them apart in usage.cache_creation; they reach
canonical Usage as cache_write_1h_tokens (a part of cache_write_tokens) and usage.pricing charges them at the
price's 1-hour rate."""

from decimal import Decimal

from proxy.canonical import Usage, cumulative_usage
from proxy.formats.anthropic.wire import usage_from_wire
from usage import pricing


def test_anthropic_usage_with_cache_creation_split():
    raw = {"input_tokens": 12, "cache_creation_input_tokens": 3000, "cache_read_input_tokens": 500,
           "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
           "output_tokens": 1}  # fmt: skip
    start = usage_from_wire(raw)
    assert (start.cache_write_tokens, start.cache_write_1h_tokens) == (3000, 2000)
    delta = usage_from_wire({"output_tokens": 40}, base=start)  # message_delta: cumulative, input figures omitted
    assert (delta.cache_write_tokens, delta.cache_write_1h_tokens, delta.output_tokens) == (3000, 2000, 40)
    assert usage_from_wire({"input_tokens": 1, "cache_creation_input_tokens": 7}).cache_write_1h_tokens == 0
    carried = cumulative_usage(start, Usage(output_tokens=40))
    assert carried.cache_write_1h_tokens == 2000


def test_one_hour_writes_cost_the_one_hour_rate():
    usage = usage_from_wire({"input_tokens": 0, "cache_creation_input_tokens": 3000, "output_tokens": 0,
                             "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000}})  # fmt: skip
    price = pricing.Rates(input=Decimal(3), output=Decimal(15), cache_read=Decimal("0.3"),
                          cache_write=Decimal("3.75"), cache_write_1h=Decimal(6))  # fmt: skip
    cost = pricing.cost(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, cache_read=0,
                        cache_write=usage.cache_write_tokens, cache_write_1h=usage.cache_write_1h_tokens, price=price)  # fmt: skip
    assert cost == Decimal("0.01575000")  # 1000 × 3.75 + 2000 × 6, per million
