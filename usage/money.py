"""How money is written out: the one home of the rules in docs/finance.md ("Money on screen and in files").

    cents(value)   what a person reads: dollars and cents, thousands separated ("$1,256.21"), rounded half up;
                   a nonzero amount under half a cent is "<$0.01" (never a misleading "$0.00"), a negative one
                   "-<$0.01"
    exact(value)   what a file or a program reads (CSV, JSON, the title a page shows on hover): the value's own
                   digits in fixed point ("1256.20585066", "0.00000000"), never exponent notation, never rounded
    usd_html(value) cents(value) in a <span> whose title is the exact amount: the pages' money cell

A Decimal zero summed by the database can come back as 0E-8 (Decimal(0).quantize(QUANTUM)); str() of it is
exponent notation, which is why nothing here uses str() on money.
"""

from decimal import ROUND_HALF_UP, Decimal

from django.utils.html import format_html

CENT = Decimal("0.01")


def _decimal(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value or 0))


def cents(value) -> str:
    amount = _decimal(value)
    rounded = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    if amount and not rounded:
        return f"{sign}<$0.01"
    return f"{sign}${abs(rounded):,.2f}"


def exact(value) -> str:
    """Fixed point with every digit the value has; None stays None (an absent budget is not $0)."""
    if value is None:
        return None
    return format(_decimal(value), "f")


def exact_title(value) -> str:
    """The exact amount for a person's eyes (the hover title): "$1,256.20585066"."""
    amount = _decimal(value)
    return f"{'-' if amount < 0 else ''}${abs(amount):,f}"


def usd_html(value) -> str:
    return format_html('<span class="money" title="{}">{}</span>', exact_title(value), cents(value))
