"""The only cost computation: tokens × the price in effect, in Decimal, no I/O. Prices are USD per million tokens.

    cost(...)       one request's cost from its token counts and a price (anything with the rate attributes
                    below: proxy.routing.Price, a ModelPrice row via `rates`, usage.synthetic's prices)
    rates(row)      a ModelPrice row -> Rates, the frozen value the rest of the code passes around
    price_on(...)   the ModelPrice row in effect for a model on a day (effective-dated: the newest row whose
                    effective_from is on or before the day)

Cost rules (README "Finance report and rollups"):
- `input_tokens` is *uncached* input only; cache reads and cache writes are priced on their own rates and never
  counted twice (OpenAI's prompt_tokens include cached tokens: proxy.formats subtracts them before we get here).
- Cache writes: `cache_write` is every cache-write token, `cache_write_1h` the part of them written with a
  one-hour TTL when the upstream reports the split (Anthropic's usage.cache_creation). The 1-hour part is
  charged at `cache_write_1h` when the price has one (empty = the 5-minute rate), the rest at `cache_write`.
- A native batch request (the provider's own batch API) is charged `1 - batch_discount` of the sum.
- The result is rounded half-even to QUANTUM ($0.00000001), the ledger's own precision, once per request: a
  total over rows is then exactly the sum of the stored row costs.

To add a rate (say, audio tokens): a field on ModelPrice (and its migration), one on Rates and
proxy.routing.Price, a term in `cost`, a column on the ledger row.
"""

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

MILLION = Decimal(1_000_000)
QUANTUM = Decimal("0.00000001")
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Rates:
    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    cache_write_1h: Decimal | None = None  # None: the 5-minute cache write rate
    batch_discount: Decimal = ZERO  # fraction off for a provider's native batch API


def rates(row) -> Rates:
    """A ModelPrice row as Rates."""
    return Rates(
        input=row.input_per_mtok,
        output=row.output_per_mtok,
        cache_read=row.cache_read_per_mtok,
        cache_write=row.cache_write_per_mtok,
        cache_write_1h=row.cache_write_1h_per_mtok,
        batch_discount=row.batch_discount or ZERO,
    )


def cost(
    *,
    input_tokens: int,
    output_tokens: int,
    cache_read: int,
    cache_write: int,
    price,
    cache_write_1h: int = 0,
    batch: bool = False,
) -> Decimal:
    """USD for one request. `cache_write` counts every cache-write token, `cache_write_1h` the one-hour part of
    them (0 when the upstream does not say). `batch`: the request went through the provider's batch API."""
    if price is None:
        return ZERO.quantize(QUANTUM)
    one_hour = min(max(cache_write_1h, 0), cache_write)
    rate_1h = getattr(price, "cache_write_1h", None)
    if rate_1h is None:
        rate_1h = price.cache_write
    total = (
        input_tokens * price.input
        + output_tokens * price.output
        + cache_read * price.cache_read
        + (cache_write - one_hour) * price.cache_write
        + one_hour * rate_1h
    )
    if batch:
        total *= 1 - (getattr(price, "batch_discount", None) or ZERO)
    return (total / MILLION).quantize(QUANTUM, rounding=ROUND_HALF_EVEN)


def usage_cost(usage, price, *, batch: bool = False) -> Decimal:
    """`cost` of a request's usage (proxy.canonical.Usage: input, output, cache read, cache write and its
    one-hour part), so callers cannot leave a figure out."""
    return cost(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, cache_read=usage.cache_read_tokens,
                cache_write=usage.cache_write_tokens, cache_write_1h=usage.cache_write_1h_tokens, price=price,
                batch=batch)  # fmt: skip


def price_on(model: str, day: date):
    """The ModelPrice in effect for `model` on `day`, or None. One indexed query (model, effective_from)."""
    from .models import ModelPrice

    return ModelPrice.objects.filter(model=model, effective_from__lte=day).order_by("-effective_from").first()
