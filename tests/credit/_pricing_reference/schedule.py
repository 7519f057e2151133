"""Loan terms -> the dated cash-flow schedule the borrower actually faces.

Conventions (every amount an int in the principal asset's smallest unit):
* Interest: the nominal annual rate r accrues r/12 per whole month and r x days/365 per odd day
  (actual/365 for the odd days of an odd first period; whole months counted as in dates.py).
  Each period's interest is rounded half-up to a whole unit.
* Annuity: the level payment for a first period of g months (g = m + d x 12/365) is
  B (1 + i g) / ((1 + i) a_n(i)), i = r/12, a_n = (1 - (1+i)^-n) / i, which reduces to the usual
  B / a_n when g = 1; rounded half-up to a whole unit; the last payment absorbs the rounding so
  the balance ends exactly at zero.
* Interest-only + balloon: each month pays the interest; the last payment adds the principal.
* Bullet: one payment of principal + simple interest at maturity (start + term months).
* Fees: an origination fee is DEDUCTED (the borrower receives principal - fee, owes principal)
  or FINANCED (receives principal, owes principal + fee); a periodic fee is added to every
  payment; the estimated gas cost is a charge the borrower pays at drawdown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from enum import StrEnum

from backend.credit.pricing.errors import InvalidLoanTerms
from tests.credit._pricing_reference.cashflows import CashFlow
from tests.credit._pricing_reference.dates import add_months, is_month_end, months_and_days
from tests.credit._pricing_reference.solver import PRECISION

MAX_TERM_MONTHS = 600


class Repayment(StrEnum):
    """How the principal comes back."""

    ANNUITY = "annuity"
    INTEREST_ONLY = "interest_only"
    BULLET = "bullet"


class Frequency(StrEnum):
    """How often the borrower pays."""

    MONTHLY = "monthly"
    SINGLE = "single"


class FeeTreatment(StrEnum):
    """Whether the origination fee is taken out of the drawdown or added to the debt."""

    DEDUCTED = "deducted"
    FINANCED = "financed"


@dataclass(frozen=True)
class LoanTerms:
    """A quote's terms, amounts in the principal asset's smallest unit."""

    principal: int
    nominal_rate: Decimal
    term_months: int
    start: date
    repayment: Repayment = Repayment.ANNUITY
    first_payment: date | None = None
    origination_fee: int = 0
    fee_treatment: FeeTreatment = FeeTreatment.DEDUCTED
    periodic_fee: int = 0
    gas_cost: int = 0

    @property
    def frequency(self) -> Frequency:
        """A bullet is a single payment; the other repayment types pay monthly."""
        return Frequency.SINGLE if self.repayment is Repayment.BULLET else Frequency.MONTHLY


@dataclass(frozen=True)
class Installment:
    """One scheduled payment and what it is made of."""

    on: date
    principal: int
    interest: int
    fee: int

    @property
    def total(self) -> int:
        """What the borrower pays that day."""
        return self.principal + self.interest + self.fee


@dataclass(frozen=True)
class Schedule:
    """The loan as money moving: what is received, what is paid, when."""

    terms: LoanTerms
    drawdown: int
    installments: tuple[Installment, ...]

    @property
    def cash_flows(self) -> list[CashFlow]:
        """Drawdown, gas at drawdown, then each installment: the rate equations' input."""
        flows = [CashFlow.drawdown(self.terms.start, self.drawdown)]
        if self.terms.gas_cost:
            flows.append(CashFlow.repayment(self.terms.start, self.terms.gas_cost, "gas"))
        flows += [
            CashFlow.repayment(item.on, item.total, "installment") for item in self.installments
        ]
        return flows

    @property
    def total_payments(self) -> int:
        """Sum of the installments (principal, interest and periodic fees)."""
        return sum(item.total for item in self.installments)

    @property
    def total_cost(self) -> int:
        """Payments + upfront fees + estimated gas - principal (the total cost of credit)."""
        deducted = self.terms.principal - self.drawdown
        return self.total_payments + deducted + self.terms.gas_cost - self.terms.principal


def _units(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def _validate(terms: LoanTerms) -> None:
    problems = []
    if terms.principal <= 0:
        problems.append(f"principal must be > 0 smallest units, got {terms.principal}")
    if not 0 <= terms.nominal_rate <= 100:
        problems.append(f"nominal_rate must be in [0, 100] (1 = 100 %), got {terms.nominal_rate}")
    if not 1 <= terms.term_months <= MAX_TERM_MONTHS:
        problems.append(f"term_months must be 1..{MAX_TERM_MONTHS}, got {terms.term_months}")
    for name in ("origination_fee", "periodic_fee", "gas_cost"):
        if getattr(terms, name) < 0:
            problems.append(f"{name} must be >= 0, got {getattr(terms, name)}")
    if terms.fee_treatment is FeeTreatment.DEDUCTED and terms.origination_fee >= terms.principal:
        problems.append("a deducted origination_fee must be smaller than the principal")
    if terms.first_payment is not None:
        if terms.repayment is Repayment.BULLET:
            problems.append("first_payment does not apply to a bullet (it pays at maturity)")
        elif not terms.start < terms.first_payment <= add_months(terms.start, 2):
            problems.append("first_payment must fall after start and within two months of it")
    if problems:
        raise InvalidLoanTerms(
            "Invalid loan terms: " + "; ".join(problems) + ".",
            hint="Correct the listed fields; amounts are integers in the asset's smallest unit.",
        )


def _year_fraction(start: date, end: date) -> Decimal:
    span = months_and_days(start, end)
    return Decimal(span.months) / 12 + Decimal(span.days) / 365


def build_schedule(terms: LoanTerms) -> Schedule:
    """The installments of `terms` (see the module docstring for every convention)."""
    _validate(terms)
    financed = terms.fee_treatment is FeeTreatment.FINANCED
    owed = terms.principal + (terms.origination_fee if financed else 0)
    drawdown = terms.principal - (0 if financed else terms.origination_fee)
    with localcontext() as ctx:
        ctx.prec = PRECISION
        if terms.repayment is Repayment.BULLET:
            maturity = add_months(terms.start, terms.term_months)
            interest = _units(owed * terms.nominal_rate * _year_fraction(terms.start, maturity))
            items = (Installment(maturity, owed, interest, terms.periodic_fee),)
            return Schedule(terms, drawdown, items)
        monthly = _monthly(terms, owed, _payment_dates(terms))
    return Schedule(terms, drawdown, tuple(monthly))


def _payment_dates(terms: LoanTerms) -> list[date]:
    # Payments keep the anchor's day of the month; an anchor on a month end keeps paying on
    # month ends (Appendix J (b)(3)(iv)), so a loan drawn on 31 January pays on 28 February,
    # 31 March, 30 April...
    if terms.first_payment is None:
        anchor, offset = terms.start, 1
    else:
        anchor, offset = terms.first_payment, 0
    month_end = is_month_end(anchor)
    return [add_months(anchor, k + offset, month_end=month_end) for k in range(terms.term_months)]


def _monthly(terms: LoanTerms, owed: int, dates: list[date]) -> list[Installment]:
    rate = terms.nominal_rate
    monthly = rate / 12
    first_years = _year_fraction(terms.start, dates[0])
    n = len(dates)
    level = 0
    if terms.repayment is Repayment.ANNUITY:
        if monthly == 0:
            level = _units(Decimal(owed) / n)
        else:
            g = first_years * 12
            annuity = (1 - (1 + monthly) ** -n) / monthly
            level = _units(owed * (1 + monthly * g) / ((1 + monthly) * annuity))
    balance = owed
    items = []
    for index, on in enumerate(dates):
        years = first_years if index == 0 else Decimal(1) / 12
        interest = _units(balance * rate * years)
        last = index == n - 1
        if terms.repayment is Repayment.INTEREST_ONLY:
            principal = balance if last else 0
        else:
            principal = balance if last else max(0, min(balance, level - interest))
        balance -= principal
        items.append(Installment(on, principal, interest, terms.periodic_fee))
    return items
