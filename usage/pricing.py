"""The only cost computation: tokens × the price in effect, in Decimal, no I/O. Prices are USD per million tokens.

    cost(...)       one request's cost from its token counts and a price (anything with the rate attributes
                    below: Rates, as proxy.routing.Snapshot.price gives them, or bench.synthetic's prices)
    rates(row)      a ModelPrice row -> Rates, the frozen value the rest of the code passes around
    price_on(...)   the ModelPrice row in effect for a model on a day (effective-dated: the newest row whose
                    effective_from is on or before the day)

Cost rules (README "Finance report and rollups"):
- `input_tokens` is *uncached* input only; cache reads and cache writes are priced on their own rates and never
  counted twice (OpenAI's prompt_tokens include cached tokens: proxy.formats subtracts them before we get here).
- Cache writes: `cache_write` is every cache-write token, `cache_write_1h` the part of them written with a
  one-hour TTL when the upstream reports the split (Anthropic's usage.cache_creation). The 1-hour part is
  charged at `cache_write_1h` when the price has one (empty = the 5-minute rate), the rest at `cache_write`.
- Long-context tier: when the price has a `long_threshold` and the request's prompt (input + cache read + cache
  write tokens, as the vendors count it) is above it, every token of the request, output included, is charged
  at the tier's rates (`long_input`, `long_output`, `long_cache_read`, `long_cache_write`, `long_cache_write_1h`;
  an empty 1-hour tier rate = the tier's cache write rate). Exactly at the threshold is the base tier.
- A native batch request (the provider's own batch API) is charged `1 - batch_discount` of the sum (either tier).
- The result is rounded half-even to QUANTUM ($0.00000001), the ledger's own precision, once per request: a
  total over rows is then exactly the sum of the stored row costs.

To add a rate (say, audio tokens): a field on ModelPrice (and its migration), one on Rates and
a term in `cost`, a column on the ledger row; a rate with a long-context variant also gets
a `long_` field and its place in LONG_FIELDS and `tier`.
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
    # The long-context tier (module docstring); None threshold: one tier.
    long_threshold: int | None = None
    long_input: Decimal | None = None
    long_output: Decimal | None = None
    long_cache_read: Decimal | None = None
    long_cache_write: Decimal | None = None
    long_cache_write_1h: Decimal | None = None


# ModelPrice's tier columns, and the Rates attribute each one becomes.
LONG_FIELDS = {
    "long_context_threshold": "long_threshold",
    "long_input_per_mtok": "long_input",
    "long_output_per_mtok": "long_output",
    "long_cache_read_per_mtok": "long_cache_read",
    "long_cache_write_per_mtok": "long_cache_write",
    "long_cache_write_1h_per_mtok": "long_cache_write_1h",
}
LONG_REQUIRED = ("long_input_per_mtok", "long_output_per_mtok", "long_cache_read_per_mtok", "long_cache_write_per_mtok")


def long_tier_problem(values: dict) -> tuple[str, str] | None:
    """(field, message) when a price's long-context tier is half filled in, else None. `values` has ModelPrice
    field names. A tier needs its threshold and all four rates: a missing rate would bill long requests at 0."""
    given = [f for f in LONG_FIELDS if values.get(f) is not None]
    if not given:
        return None
    if values.get("long_context_threshold") is None:
        return "long_context_threshold", "long-context rates need a threshold (prompt tokens above which they apply)"
    missing = [f for f in LONG_REQUIRED if values.get(f) is None]
    if missing:
        return missing[0], "required when long_context_threshold is set (the tier's rates are all charged)"
    return None


def rates(row) -> Rates:
    """A ModelPrice row as Rates."""
    return Rates(
        input=row.input_per_mtok,
        output=row.output_per_mtok,
        cache_read=row.cache_read_per_mtok,
        cache_write=row.cache_write_per_mtok,
        cache_write_1h=row.cache_write_1h_per_mtok,
        batch_discount=row.batch_discount or ZERO,
        **{attr: getattr(row, column) for column, attr in LONG_FIELDS.items()},
    )


def tier(price, prompt_tokens: int) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal]:
    """(input, output, cache read, cache write, 1-hour cache write) rates for a request whose prompt is
    `prompt_tokens` long. Prices without the tier attributes (bench.synthetic's) are one tier."""
    threshold = getattr(price, "long_threshold", None)
    if threshold is None or prompt_tokens <= threshold:
        one_hour = getattr(price, "cache_write_1h", None)
        return (price.input, price.output, price.cache_read, price.cache_write,
                price.cache_write if one_hour is None else one_hour)  # fmt: skip
    one_hour = price.long_cache_write_1h
    return (price.long_input, price.long_output, price.long_cache_read, price.long_cache_write,
            price.long_cache_write if one_hour is None else one_hour)  # fmt: skip


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
    rate_in, rate_out, rate_read, rate_write, rate_1h = tier(price, input_tokens + cache_read + cache_write)
    total = (
        input_tokens * rate_in
        + output_tokens * rate_out
        + cache_read * rate_read
        + (cache_write - one_hour) * rate_write
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
