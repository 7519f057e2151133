"""One call from loan terms to every comparable figure of a quote."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from backend.credit.pricing.schedule import Frequency, LoanTerms, Schedule, build_schedule
from tests.credit._pricing_reference.eu_aprc import Aprc, TimeBasis, eu_aprc
from tests.credit._pricing_reference.regz import MONTH, RegZApr, regz_apr, single_payment_unit


@dataclass(frozen=True)
class LoanPricing:
    """Nominal APR, EU APRC, Reg Z APR and total cost of one set of loan terms."""

    schedule: Schedule
    nominal_apr: Decimal
    aprc: Aprc
    regz: RegZApr
    total_cost: int

    @property
    def effective_annual_rate(self) -> Decimal:
        """The ranking rate: the unrounded APRC."""
        return self.aprc.rate


def price_loan(terms: LoanTerms, *, basis: TimeBasis = TimeBasis.EQUAL_MONTHS) -> LoanPricing:
    """Build the schedule and solve both rate equations over its cash flows."""
    schedule = build_schedule(terms)
    flows = schedule.cash_flows
    if terms.frequency is Frequency.MONTHLY:
        unit = MONTH
    else:
        unit = single_payment_unit(terms.start, schedule.installments[-1].on)
    return LoanPricing(
        schedule=schedule,
        nominal_apr=terms.nominal_rate,
        aprc=eu_aprc(flows, basis=basis),
        regz=regz_apr(flows, unit),
        total_cost=schedule.total_cost,
    )
