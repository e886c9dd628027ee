"""Money written for people and for files (usage/money.py) and the month-end forecast and runway
(usage/forecast.py), checked against numbers worked out by hand (docs/finance.md)."""

from datetime import date
from decimal import Decimal as D

import pytest

from usage import forecast
from usage.money import cents, exact, exact_title, usd_html


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (D("1256.20585066"), "$1,256.21"),
        (D("0E-8"), "$0.00"),  # a summed zero from the database
        (D("0.00499999"), "<$0.01"),  # nonzero under half a cent: never a misleading $0.00
        (D("0.005"), "$0.01"),  # half a cent rounds up (half-even would give $0.00)
        (D("0.01499999"), "$0.01"),
        (D("-0.003"), "-<$0.01"),
        (D("-12.5"), "-$12.50"),
        (D("1E+3"), "$1,000.00"),
        (0, "$0.00"),
        (None, "$0.00"),
    ],
)
def test_cents_for_people(value, shown):
    assert cents(value) == shown


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (D("0E-8"), "0.00000000"),  # str() would say 0E-8
        (D("1256.20585066"), "1256.20585066"),
        (D("1E+3"), "1000"),
        (D("0.1E-7"), "0.00000001"),
        (D("20.00"), "20.00"),  # a budget keeps its own digits
        (None, None),  # an absent budget is not zero
    ],
)
def test_exact_is_fixed_point_with_every_digit(value, written):
    assert exact(value) == written


def test_the_page_cell_shows_cents_with_the_exact_amount_on_hover():
    assert usd_html(D("1256.20585066")) == '<span class="money" title="$1,256.20585066">$1,256.21</span>'
    assert usd_html(D("0E-8")) == '<span class="money" title="$0.00000000">$0.00</span>'
    assert exact_title(D("-0.003")) == "-$0.003"


# --- the forecast, by hand --------------------------------------------------------------------------------------
#
# 10 November 2026 (a 30-day month): 20 days are left after today. Spent this month so far: $40.12345678.
# The last 7 full days (3 to 9 November): 5 + 4.50 + 6.25 + 0 + 3.10000001 + 7 + 9.28345677 = 35.13345678,
# / 7 = 5.019065254285…, rounded to the ledger's $0.00000001: rate = $5.01906525.
# Month end = 40.12345678 + 5.01906525 × 20 = 40.12345678 + 100.38130500 = $140.50476178.
# A $100 budget: (100 - 40.12345678) / 5.01906525 = 11.93 days -> used up after 12 more days: 22 November.
# A $150 budget: 109.87654322 / 5.01906525 = 21.89 days -> 22 > 20 days left: not this month.

TODAY = date(2026, 11, 10)
SPENT = D("40.12345678")
RECENT = [D("5"), D("4.50"), D("6.25"), D("0"), D("3.10000001"), D("7"), D("9.28345677")]


def test_month_end_forecast_and_runway_match_the_hand_computed_example():
    f = forecast.forecast(today=TODAY, spent=SPENT, recent=RECENT, budget=D("100"))
    assert f.rate == D("5.01906525") and f.rate_days == 7 and f.days_left == 20
    assert f.month_end == D("140.50476178")
    assert f.runs_out == date(2026, 11, 22) and not f.exhausted and f.over_budget
    later = forecast.forecast(today=TODAY, spent=SPENT, recent=RECENT, budget=D("150"))
    assert later.runs_out is None and not later.over_budget  # not this month
    assert later.month_end == f.month_end  # the budget does not change the forecast


def test_runway_edges():
    # exactly reached: $10 spent, $5 a day, $20 budget -> after 2 more days, on the 12th
    exact_day = forecast.forecast(today=TODAY, spent=D("10"), recent=[D("5")] * 7, budget=D("20"))
    assert exact_day.runs_out == date(2026, 11, 12)
    used_up = forecast.forecast(today=TODAY, spent=D("40"), recent=RECENT, budget=D("40"))
    assert used_up.exhausted and used_up.runs_out == TODAY
    idle = forecast.forecast(today=TODAY, spent=D("3"), recent=[D(0)] * 7, budget=D("20"))
    assert idle.rate == 0 and idle.month_end == D("3") and idle.runs_out is None
    new = forecast.forecast(today=TODAY, spent=D("3"), recent=[], budget=D("20"))
    assert new.rate is None and new.month_end is None and new.runs_out is None
    last_day = forecast.forecast(today=date(2026, 11, 30), spent=D("50"), recent=[D("10")], budget=D("55"))
    assert last_day.days_left == 0 and last_day.month_end == D("50") and last_day.runs_out is None


def test_the_rate_averages_the_last_seven_full_days_or_fewer_for_a_younger_scope():
    assert forecast.recent_window(TODAY) == [date(2026, 11, d) for d in range(3, 10)]
    assert forecast.recent_window(TODAY, created=date(2026, 11, 7)) == [date(2026, 11, 7), date(2026, 11, 8),
                                                                          date(2026, 11, 9)]  # fmt: skip
    assert forecast.recent_window(TODAY, created=TODAY) == []
