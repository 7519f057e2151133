"""Schedules: worked numbers for each repayment type and the validation of terms."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from backend.credit.pricing import (
    FeeTreatment,
    Frequency,
    InvalidLoanTerms,
    LoanTerms,
    Repayment,
    build_schedule,
    price_loan,
)

D = Decimal
START = date(2025, 1, 31)


def test_annuity_level_payment_and_month_end_dates() -> None:
    """12 x at 12 % on 1,000,000 units: the textbook payment 88,848.79 rounds to 88,849, the
    last payment absorbs the rounding, and a month-end start pays on month ends."""
    schedule = build_schedule(LoanTerms(1_000_000, D("0.12"), 12, START))
    totals = [item.total for item in schedule.installments]
    assert totals[:11] == [88_849] * 11
    assert totals[11] == 88_847
    assert [item.on for item in schedule.installments][:3] == [
        date(2025, 2, 28), date(2025, 3, 31), date(2025, 4, 30)]  # fmt: skip


def test_interest_only_balloon_and_bullet() -> None:
    io = build_schedule(LoanTerms(1_200_000, D("0.06"), 6, START, Repayment.INTEREST_ONLY))
    assert [item.total for item in io.installments] == [6_000] * 5 + [1_206_000]
    bullet = build_schedule(LoanTerms(1_200_000, D("0.06"), 6, START, Repayment.BULLET))
    assert [(i.on, i.principal, i.interest) for i in bullet.installments] == [
        (date(2025, 7, 31), 1_200_000, 36_000)]  # fmt: skip
    assert bullet.terms.frequency is Frequency.SINGLE


def test_odd_first_period_charges_the_extra_days_actual_365() -> None:
    """First payment 1 month + 10 days after drawdown: first interest = B r (1/12 + 10/365)."""
    terms = LoanTerms(1_000_000, D("0.12"), 6, date(2025, 1, 5), Repayment.INTEREST_ONLY,
                      first_payment=date(2025, 2, 15))  # fmt: skip
    first = build_schedule(terms).installments[0]
    expected = D(1_000_000) * D("0.12") * (D(1) / 12 + D(10) / 365)
    assert first.interest == int(expected.to_integral_value())


def test_deducted_and_financed_fees_and_gas_in_the_total_cost() -> None:
    base = dict(principal=1_000_000, nominal_rate=D("0.10"), term_months=12, start=START)
    deducted = price_loan(LoanTerms(**base, origination_fee=20_000, gas_cost=300))  # type: ignore[arg-type]
    financed = price_loan(LoanTerms(**base, origination_fee=20_000,  # type: ignore[arg-type]
                                    fee_treatment=FeeTreatment.FINANCED))  # fmt: skip
    assert deducted.schedule.drawdown == 980_000
    assert financed.schedule.drawdown == 1_000_000
    assert deducted.total_cost == deducted.schedule.total_payments + 20_000 + 300 - 1_000_000
    assert financed.total_cost == financed.schedule.total_payments - 1_000_000
    # Financing the fee means paying interest on it too, yet the deducted fee costs more per
    # unit actually received: both sit above the fee-free APRC of 10.47 %.
    assert deducted.aprc.percent > D("10.5") and financed.aprc.percent > D("10.5")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"principal": 0}, "principal"),
        ({"nominal_rate": D("-0.01")}, "nominal_rate"),
        ({"term_months": 0}, "term_months"),
        ({"gas_cost": -1}, "gas_cost"),
        ({"origination_fee": 1_000_000}, "origination_fee"),
        ({"repayment": Repayment.BULLET, "first_payment": date(2025, 2, 10)}, "first_payment"),
        ({"first_payment": date(2025, 6, 1)}, "first_payment"),
    ],
)
def test_invalid_terms_name_the_field(changes: dict[str, object], field: str) -> None:
    values: dict[str, object] = dict(
        principal=1_000_000, nominal_rate=D("0.1"), term_months=12, start=START)  # fmt: skip
    values.update(changes)
    with pytest.raises(InvalidLoanTerms, match=field) as raised:
        build_schedule(LoanTerms(**values))  # type: ignore[arg-type]
    assert raised.value.status_code == 422 and raised.value.hint
