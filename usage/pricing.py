"""Cost of one request: pure arithmetic, no I/O. Prices are USD per million tokens."""

from decimal import Decimal

MILLION = Decimal(1_000_000)
QUANTUM = Decimal("0.00000001")


def cost(*, input_tokens: int, output_tokens: int, cache_read: int, cache_write: int, price) -> Decimal:
    """`input_tokens` is uncached input only (cache reads and writes are priced separately)."""
    if price is None:
        return Decimal(0)
    total = (
        input_tokens * price.input
        + output_tokens * price.output
        + cache_read * price.cache_read
        + cache_write * price.cache_write
    )
    return (total / MILLION).quantize(QUANTUM)
