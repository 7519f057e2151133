"""The EU annual percentage rate of charge (APRC).

Equation: Directive 2008/48/EC Annex I, Part I (unchanged as Directive (EU) 2023/2225 Annex III):

    sum_k C_k (1 + X)^(-t_k) = sum_l D_l (1 + X)^(-s_l)

drawdowns C_k at t_k years after the first drawdown, repayments and charges D_l at s_l years.

Time in years, remark (c) of the annex ("a year is presumed to have 365 days (or 366 days for
leap years), 52 weeks or 12 equal months; an equal month is presumed to have 30,41666 days"),
with the counting rule of Part I(c) as amended by Directive 2011/90/EU:

* `TimeBasis.EQUAL_MONTHS` (default, for monthly schedules): whole months counted back from the
  payment date count 1/12 year each; remaining days count 1/365 year each. A loan repaid on the
  same day of each month thus has s_l = l/12 exactly.
* `TimeBasis.CALENDAR_DAYS`: actual days / 365, as Annex III part A of Directive 98/7/EC
  ("calendar basis") does in its worked examples. We use 365 in leap years too (the annex's
  366-day option is not applied), so a given schedule always prices the same.

The result X is solved to 1e-12 (see solver.py) and reported twice: unrounded, and as the
percentage to one decimal place rounded half-up (remark (d): "if the figure at the following
decimal place is greater than or equal to 5, the figure at that particular decimal place shall
be increased by one").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from enum import StrEnum

from backend.credit.pricing.cashflows import CashFlow, validate_flows
from tests.credit._pricing_reference.dates import months_and_days
from tests.credit._pricing_reference.solver import PRECISION, solve_increasing

DAYS_PER_YEAR = Decimal(365)
MONTHS_PER_YEAR = Decimal(12)
ONE_DECIMAL = Decimal("0.1")


class TimeBasis(StrEnum):
    """How an interval becomes years (2008/48/EC Annex I, remark (c))."""

    EQUAL_MONTHS = "equal_months"
    CALENDAR_DAYS = "calendar_days"


@dataclass(frozen=True)
class Aprc:
    """An APRC: `rate` is the unrounded solution X (0.1268... for 12.68 %)."""

    rate: Decimal
    basis: TimeBasis

    @property
    def percent(self) -> Decimal:
        """The disclosed figure: X in percent, one decimal place, half-up (remark (d))."""
        return (self.rate * 100).quantize(ONE_DECIMAL, rounding=ROUND_HALF_UP)


def years_between(start: date, end: date, basis: TimeBasis) -> Decimal:
    """The annex's s_l: the interval from `start` to `end` in years."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        if basis is TimeBasis.CALENDAR_DAYS:
            return Decimal((end - start).days) / DAYS_PER_YEAR
        span = months_and_days(start, end)
        return Decimal(span.months) / MONTHS_PER_YEAR + Decimal(span.days) / DAYS_PER_YEAR


def eu_aprc(flows: Sequence[CashFlow], *, basis: TimeBasis = TimeBasis.EQUAL_MONTHS) -> Aprc:
    """Solve the annex equation for X over `flows` (dated from the first drawdown)."""
    start, kept = validate_flows(flows)
    timed = [(flow.signed, years_between(start, flow.on, basis)) for flow in kept]

    def present_value(x: Decimal) -> tuple[Decimal, Decimal]:
        base = 1 + x
        value = Decimal(0)
        slope = Decimal(0)
        for amount, years in timed:
            if years == 0:
                value += amount
                continue
            discount = base**-years
            value += amount * discount
            slope -= amount * years * discount / base
        return value, slope

    return Aprc(solve_increasing(present_value), basis)


def compounded_rate(nominal: Decimal, periods_per_year: int) -> Decimal:
    """(1 + r/n)^n - 1: the effective annual rate of a nominal rate compounded n times a year."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return (1 + nominal / periods_per_year) ** periods_per_year - 1
