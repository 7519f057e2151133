"""The US Truth in Lending APR: 12 CFR 1026 Appendix J, actuarial method.

General equation, Appendix J (b)(8): with unit-period rate i, each advance A_k and payment P_j is
discounted to the start of the term by

    1 / ((1 + f i) (1 + i)^t)

where t is the number of full unit-periods and f the fraction of a unit-period from the start of
the term to the flow ((b)(5), and (b)(6): a fraction f of a unit-period earns f times the
unit-period rate, i.e. simple interest for the odd period). The APR is w i, w the number of
unit-periods in a year ((b)(1)).

Unit periods and fractions, Appendix J (b)(4) and (b)(5), for the transactions we build:
* a month or a multiple of months: full months counted back from the later date (dates.py);
  a fraction of a one-month unit-period is remaining days / 30 ((b)(5)(ii)); for a multiple of
  months the interval is 30 days per full month plus the remaining days, divided by 30 days times
  the months in the unit-period ((b)(5)(iii));
* a day or a number of days (a week = 7): the days divided by the unit-period's days ((b)(5)(iv));
  w = 52 / weeks for a whole number of weeks (example (c)(1)(v) uses w = 52), else 365 / days;
* a year: full years counted back, remaining days / 365 ((b)(5)(v)); w = 1;
* a single advance, single payment: the unit-period is the term, at most a year ((b)(4)(iii));
  w = 12 / months for a whole-month term, 365 / days for a term in days.
Semimonthly schedules are priced through explicit `RegZFlow` periods and fractions.

The figure disclosed is the APR in percent to two decimal places (hundredths, as Appendix J's
examples show), rounded half-up; the unrounded `rate` is kept. The solver tolerance is 1e-12 on i.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext

from backend.credit.pricing.cashflows import CashFlow, Direction, validate_flows
from backend.credit.pricing.errors import InvalidLoanTerms
from tests.credit._pricing_reference.dates import add_months, is_month_end, months_and_days
from tests.credit._pricing_reference.solver import PRECISION, solve_increasing

TWO_DECIMALS = Decimal("0.01")


@dataclass(frozen=True)
class UnitPeriod:
    """A unit-period: `months` months (1 = month, 3 = quarter, 12 = year) or `days` days."""

    months: int = 0
    days: int = 0

    def __post_init__(self) -> None:
        if (self.months > 0) == (self.days > 0) or self.months < 0 or self.days < 0:
            raise InvalidLoanTerms(
                f"A unit-period is a number of months or of days, got {self}.",
                hint="Set exactly one of months and days to a positive number.",
            )
        if self.months > 12:
            raise InvalidLoanTerms(
                f"A unit-period of {self.months} months exceeds one year.",
                hint="Appendix J (b)(4) caps the unit-period at one year.",
            )

    @property
    def per_year(self) -> Decimal:
        """w: unit-periods in a year: 12 / months, 52 / weeks (Appendix J's weekly examples use
        w = 52), else 365 / days."""
        with localcontext() as ctx:
            ctx.prec = PRECISION
            if self.months:
                return Decimal(12) / self.months
            if self.days % 7 == 0:
                return Decimal(52) / (self.days // 7)
            return Decimal(365) / self.days


MONTH = UnitPeriod(months=1)
WEEK = UnitPeriod(days=7)
YEAR = UnitPeriod(months=12)


@dataclass(frozen=True)
class RegZFlow:
    """A flow placed `periods` full unit-periods plus `fraction` of one from the term's start."""

    amount: Decimal
    periods: int
    fraction: Decimal
    advance: bool


@dataclass(frozen=True)
class RegZApr:
    """An Appendix J APR: `rate` = w i unrounded (0.0969... for 9.69 %)."""

    rate: Decimal
    unit_rate: Decimal
    per_year: Decimal

    @property
    def percent(self) -> Decimal:
        """The disclosed figure: percent to two decimal places, half-up."""
        return (self.rate * 100).quantize(TWO_DECIMALS, rounding=ROUND_HALF_UP)


def unit_periods_between(start: date, end: date, unit: UnitPeriod) -> tuple[int, Decimal]:
    """(t, f) from `start` to `end` by the rules of Appendix J (b)(5)."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        if unit.days:
            full, rest = divmod((end - start).days, unit.days)
            return full, Decimal(rest) / unit.days
        if unit.months == 12:
            span = months_and_days(start, end)
            years = span.months // 12
            anchor = add_months(end, -12 * years, month_end=is_month_end(end))
            return years, Decimal((anchor - start).days) / 365
        span = months_and_days(start, end)
        if unit.months == 1:
            return span.months, Decimal(span.days) / 30
        full, rest = divmod(30 * span.months + span.days, 30 * unit.months)
        return full, Decimal(rest) / (30 * unit.months)


def single_payment_unit(start: date, end: date) -> UnitPeriod:
    """Appendix J (b)(4)(iii): a single advance, single payment's unit-period is its term."""
    span = months_and_days(start, end)
    if span.months >= 12:
        return YEAR
    if span.days == 0:
        return UnitPeriod(months=span.months)
    return UnitPeriod(days=(end - start).days)


def regz_flows(flows: Sequence[CashFlow], unit: UnitPeriod) -> list[RegZFlow]:
    """Place dated flows in unit-periods from the term's start (the first advance)."""
    start, kept = validate_flows(flows)
    placed = []
    for flow in kept:
        periods, fraction = unit_periods_between(start, flow.on, unit)
        placed.append(
            RegZFlow(flow.amount, periods, fraction, flow.direction is Direction.TO_BORROWER)
        )
    return placed


def regz_apr_of(flows: Sequence[RegZFlow], per_year: Decimal) -> RegZApr:
    """Solve the general equation (b)(8) for i and return w i."""
    if not any(flow.advance for flow in flows) or all(flow.advance for flow in flows):
        raise InvalidLoanTerms(
            "An APR needs at least one advance and one payment.",
            hint="Include the amount financed and the payment schedule.",
        )

    def present_value(i: Decimal) -> tuple[Decimal, Decimal]:
        value = Decimal(0)
        slope = Decimal(0)
        for flow in flows:
            simple = 1 + flow.fraction * i
            compound = (1 + i) ** flow.periods
            discount = 1 / (simple * compound)
            signed = flow.amount if flow.advance else -flow.amount
            value += signed * discount
            # d/di of 1/(simple*compound) = -discount * (f/simple + t/(1+i))
            slope -= signed * discount * (flow.fraction / simple + flow.periods / (1 + i))
        return value, slope

    unit_rate = solve_increasing(present_value)
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return RegZApr(unit_rate * per_year, unit_rate, per_year)


def regz_apr(flows: Sequence[CashFlow], unit: UnitPeriod) -> RegZApr:
    """The Appendix J APR of dated flows with the given unit-period."""
    return regz_apr_of(regz_flows(flows, unit), unit.per_year)
