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

Speed (the present value is the hottest code of a credit request): the x-independent parts of each
flow are computed once per solve, the powers at the solver's fixed probes once per process
(`_probe_power`), and the others through `powers.fractional_power`; each gives the very Decimal
`(1 + x) ** -years` gives, so the solution is the same to the last digit (solver.py says why
that matters).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from enum import StrEnum
from functools import lru_cache

from backend.credit.pricing.cashflows import CashFlow, validate_flows
from backend.credit.pricing.dates import months_and_days
from backend.credit.pricing.powers import fractional_power
from backend.credit.pricing.solver import (
    PRECISION,
    context_key,
    is_probe,
    solve_increasing,
)

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


@dataclass(frozen=True)
class _Timed:
    """One flow of the annex equation with its x-independent parts computed once per solve."""

    amount: Decimal  # signed: + drawdown, - repayment or charge
    at_origin: bool  # years == 0: the flow is not discounted
    minus_years: Decimal  # the exponent of (1 + x)
    whole_years: bool  # an integer exponent: libmpdec's fast integer power applies
    amount_years: Decimal  # amount * years, the slope's first product

    def discount(self, base: Decimal) -> Decimal:
        """base ** -years, exactly as `**` gives it (see powers.py)."""
        if self.whole_years:
            return base**self.minus_years
        return fractional_power(base, self.minus_years)


@lru_cache(maxsize=4096)
def _probe_power(base: str, exponent: str, context: tuple[object, ...]) -> Decimal:
    """`Decimal(base) ** Decimal(exponent)` in the current context, once per spelling.

    A fractional power costs ~100 us (ln and exp at 63 digits inside libmpdec) and every solve
    takes it at the same probes (1 + x for x = 1, 0.1, ...) for the same few terms. Keyed by the
    exact spellings and the context, so a hit returns the very Decimal the call would build.
    """
    del context  # part of the key only: the caller runs in the context it describes
    return Decimal(base) ** Decimal(exponent)


def eu_aprc(flows: Sequence[CashFlow], *, basis: TimeBasis = TimeBasis.EQUAL_MONTHS) -> Aprc:
    """Solve the annex equation for X over `flows` (dated from the first drawdown)."""
    start, kept = validate_flows(flows)
    # `signed` in the caller's context and years in years_between's, as before; the products
    # below in the solver's context (the caller's with PRECISION digits), where pv took them.
    pairs = [(flow.signed, years_between(start, flow.on, basis)) for flow in kept]
    with localcontext() as ctx:
        ctx.prec = PRECISION
        timed = [
            _Timed(
                amount=amount,
                at_origin=years == 0,
                minus_years=-years,
                whole_years=years == years.to_integral_value(),
                amount_years=amount * years,
            )
            for amount, years in pairs
        ]

    def discounts(base: Decimal, x: Decimal) -> list[Decimal | None]:
        # (1 + x) ** -years per flow (None at the origin); from the cache at a solver probe,
        # through fractional_power (libmpdec's result, sooner) elsewhere.
        if is_probe(x):
            spelled, key = str(base), context_key()
            return [
                None if flow.at_origin else _probe_power(spelled, str(flow.minus_years), key)
                for flow in timed
            ]
        return [None if flow.at_origin else flow.discount(base) for flow in timed]

    def present_value(x: Decimal) -> tuple[Decimal, Decimal]:
        base = 1 + x
        value = Decimal(0)
        slope = Decimal(0)
        for flow, discount in zip(timed, discounts(base, x), strict=True):
            if discount is None:
                value += flow.amount
                continue
            value += flow.amount * discount
            slope -= flow.amount_years * discount / base
        return value, slope

    def value_only(x: Decimal) -> Decimal:
        base = 1 + x
        value = Decimal(0)
        for flow, discount in zip(timed, discounts(base, x), strict=True):
            value += flow.amount if discount is None else flow.amount * discount
        return value

    return Aprc(solve_increasing(present_value, value_only=value_only), basis)


def compounded_rate(nominal: Decimal, periods_per_year: int) -> Decimal:
    """(1 + r/n)^n - 1: the effective annual rate of a nominal rate compounded n times a year."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return (1 + nominal / periods_per_year) ** periods_per_year - 1
