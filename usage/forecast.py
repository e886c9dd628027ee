"""The month-end forecast and a budget's runway: pure arithmetic over a scope's daily spend, no I/O. The one
home of the method (docs/finance.md, "Forecast and runway"); usage.report.budget_burn and forecasts feed it
from usage.selectors.spend_by_scope, and the dashboard, the finance report and the management API show it.

    rate       the average spend of the last RECENT_DAYS full days (yesterday and the days before it), fewer when
               the project or key is younger (from the day it was created); None with no full day yet
    month_end  spend this month so far (today included) + rate x the days left after today
    runs_out   the day a monthly budget is used up at that rate: today + ceil((budget - spent) / rate) days;
               None when that day is after the month's last day ("not this month") or the rate is 0. A budget
               already used up ran out today (exhausted=True).

All amounts are Decimal. The rate is rounded half-even to the ledger's quantum ($0.00000001) before it is used,
so a forecast can be recomputed by hand from the numbers shown.
"""

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

from .pricing import QUANTUM

RECENT_DAYS = 7


@dataclass(frozen=True, slots=True)
class Forecast:
    spent: Decimal  # this month so far, today included
    rate: Decimal | None  # average of the full days below; None: no full day yet
    rate_days: int  # how many full days the rate averages
    days_left: int  # days of the month after today
    month_end: Decimal | None  # None when there is no rate
    budget: Decimal | None = None  # the monthly budget the runway is measured against
    runs_out: date | None = None  # the day the budget is used up at the rate; None: not this month (or no budget)
    exhausted: bool = False  # the budget is already used up

    @property
    def over_budget(self) -> bool:
        return self.budget is not None and self.month_end is not None and self.month_end > self.budget


def recent_window(today: date, created: date | None = None) -> list[date]:
    """The full days the rate averages: the RECENT_DAYS days before today, none before `created`."""
    days = [today - timedelta(days=n) for n in range(RECENT_DAYS, 0, -1)]
    return [d for d in days if created is None or d >= created]


def forecast(*, today: date, spent: Decimal, recent: list[Decimal], budget: Decimal | None = None) -> Forecast:
    """`spent`: this month's spend so far; `recent`: the spend of each full day of recent_window (zeros kept)."""
    days_left = calendar.monthrange(today.year, today.month)[1] - today.day
    rate = (sum(recent, Decimal(0)) / len(recent)).quantize(QUANTUM, ROUND_HALF_EVEN) if recent else None
    month_end = None if rate is None else spent + rate * days_left
    runs_out, exhausted = None, False
    if budget is not None:
        if spent >= budget:
            runs_out, exhausted = today, True
        elif rate:
            days = int(((budget - spent) / rate).to_integral_value(ROUND_CEILING))
            runs_out = today + timedelta(days=days) if days <= days_left else None
    return Forecast(spent=spent, rate=rate, rate_days=len(recent), days_left=days_left, month_end=month_end,
                    budget=budget, runs_out=runs_out, exhausted=exhausted)  # fmt: skip
