"""Hypothesis laws of loan pricing: schedules, APRC, Reg Z APR, total cost.

Amounts are integers in the asset's smallest unit, so each payment is rounded to a unit; the
laws that hold exactly for real numbers are checked with a tolerance that covers that rounding
(principals of at least 10^8 units, i.e. 100 USDC, and a bound of 2e-6 on the rate).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from backend.credit.pricing import (
    MONTH,
    FeeTreatment,
    LoanTerms,
    Repayment,
    build_schedule,
    compounded_rate,
    eu_aprc,
    price_loan,
    regz_apr,
    total_cost_of_credit,
)
from backend.credit.pricing.eu_aprc import TimeBasis, years_between
from backend.credit.pricing.regz import regz_flows

D = Decimal
ROUNDING = D("2e-6")
LAWS = settings(max_examples=60, deadline=None)

principals = st.integers(10**8, 10**15)
rates = st.integers(0, 3600).map(lambda bps: D(bps) / 10_000)
terms = st.integers(1, 72)
starts = st.dates(date(2020, 1, 1), date(2035, 12, 31))
monthly_kinds = st.sampled_from([Repayment.ANNUITY, Repayment.INTEREST_ONLY])
kinds = st.sampled_from(list(Repayment))


@LAWS
@given(principal=principals, rate=rates, months=terms, start=starts, kind=monthly_kinds)
def test_zero_fees_aprc_is_the_compounded_nominal_rate(
    principal: int, rate: Decimal, months: int, start: date, kind: Repayment
) -> None:
    """No fees, regular monthly periods: APRC = (1 + r/12)^12 - 1 and the Reg Z APR = r."""
    pricing = price_loan(LoanTerms(principal, rate, months, start, kind))
    assert abs(pricing.aprc.rate - compounded_rate(rate, 12)) < ROUNDING
    assert abs(pricing.regz.rate - rate) < ROUNDING
    assert pricing.nominal_apr == rate


@LAWS
@given(principal=principals, rate=rates, months=st.integers(1, 12), start=starts)
def test_zero_fee_bullet_is_the_nominal_rate_compounded_over_its_term(
    principal: int, rate: Decimal, months: int, start: date
) -> None:
    """A bullet repays P (1 + r m/12) after m months, so (1 + X)^(m/12) = 1 + r m/12."""
    pricing = price_loan(LoanTerms(principal, rate, months, start, Repayment.BULLET))
    expected = (1 + rate * months / 12) ** (D(12) / months) - 1
    assert abs(pricing.aprc.rate - expected) < ROUNDING


fee_fields = st.sampled_from(["deducted", "financed", "periodic", "gas"])


@LAWS
@given(
    principal=principals, rate=rates, months=terms, start=starts, kind=kinds,
    field=fee_fields, base_fee=st.integers(0, 10**6), extra=st.integers(1, 10**6),
)  # fmt: skip
def test_more_fees_mean_strictly_higher_rates(
    principal: int, rate: Decimal, months: int, start: date, kind: Repayment,
    field: str, base_fee: int, extra: int,
) -> None:  # fmt: skip
    """Any extra fee (deducted, financed, periodic or gas) raises both the APRC and the Reg Z
    APR strictly, and the total cost by at least the fee."""

    def terms_with(fee: int) -> LoanTerms:
        if field in ("deducted", "financed"):
            treatment = FeeTreatment(field)
            return LoanTerms(principal, rate, months, start, kind, origination_fee=fee,
                             fee_treatment=treatment)  # fmt: skip
        if field == "periodic":
            return LoanTerms(principal, rate, months, start, kind, periodic_fee=fee)
        return LoanTerms(principal, rate, months, start, kind, gas_cost=fee)

    low, high = price_loan(terms_with(base_fee)), price_loan(terms_with(base_fee + extra))
    assert high.aprc.rate > low.aprc.rate
    assert high.regz.rate > low.regz.rate
    assert high.total_cost >= low.total_cost + extra


@LAWS
@given(
    principal=principals, rate=rates, months=st.integers(1, 60), longer=st.integers(1, 60),
    start=starts, fee_permille=st.integers(5, 50),
)  # fmt: skip
def test_longer_term_spreads_a_fixed_fee_so_the_aprc_falls(
    principal: int, rate: Decimal, months: int, longer: int, start: date, fee_permille: int
) -> None:
    """Same nominal rate, same upfront fee (0.5-5 % of the principal): the longer annuity has the
    lower APRC, since the fee is amortised over more years."""
    fee = principal * fee_permille // 1000
    short = price_loan(LoanTerms(principal, rate, months, start, origination_fee=fee))
    long = price_loan(LoanTerms(principal, rate, months + longer, start, origination_fee=fee))
    assert long.aprc.rate < short.aprc.rate


@LAWS
@given(
    principal=principals, rate=rates, months=terms, start=starts, kind=kinds,
    fee=st.integers(0, 10**7), periodic=st.integers(0, 10**5), gas=st.integers(0, 10**6),
    treatment=st.sampled_from(list(FeeTreatment)), odd_days=st.integers(-20, 25),
)  # fmt: skip
def test_solved_rates_reprice_the_cash_flows_to_zero(
    principal: int, rate: Decimal, months: int, start: date, kind: Repayment, fee: int,
    periodic: int, gas: int, treatment: FeeTreatment, odd_days: int,
) -> None:  # fmt: skip
    """At the solved APRC the annex equation balances; at the solved unit rate the Appendix J
    equation balances (both to 1e-9 of the money moved). Odd first periods included."""
    first = None
    if kind is not Repayment.BULLET and odd_days:
        first = start + timedelta(days=31 + odd_days)
    terms_ = LoanTerms(principal, rate, months, start, kind, first, fee, treatment, periodic, gas)
    schedule = build_schedule(terms_)
    flows = schedule.cash_flows
    moved = sum((flow.amount for flow in flows), D(0))
    for basis in TimeBasis:
        x = eu_aprc(flows, basis=basis).rate
        npv = sum((f.signed * (1 + x) ** -years_between(start, f.on, basis) for f in flows), D(0))
        assert abs(npv) < moved * D("1e-9")
    if kind is not Repayment.BULLET:
        i = regz_apr(flows, MONTH).unit_rate
        balance = sum(
            (f.amount if f.advance else -f.amount) / ((1 + f.fraction * i) * (1 + i) ** f.periods)
            for f in regz_flows(flows, MONTH)
        ) + D(0)
        assert abs(balance) < moved * D("1e-9")


@LAWS
@given(
    principal=principals, rate=rates, months=terms, start=starts, kind=kinds,
    fee=st.integers(0, 10**7), periodic=st.integers(0, 10**5), gas=st.integers(0, 10**6),
    treatment=st.sampled_from(list(FeeTreatment)),
)  # fmt: skip
def test_schedule_repays_exactly_and_total_cost_adds_up(
    principal: int, rate: Decimal, months: int, start: date, kind: Repayment, fee: int,
    periodic: int, gas: int, treatment: FeeTreatment,
) -> None:  # fmt: skip
    """Principal parts sum to the debt; total cost = payments + fees + gas - principal =
    interest + fees + gas, and equals outflows minus inflows of the cash flows."""
    terms_ = LoanTerms(principal, rate, months, start, kind, None, fee, treatment, periodic, gas)
    schedule = build_schedule(terms_)
    owed = principal + (fee if treatment is FeeTreatment.FINANCED else 0)
    items = schedule.installments
    assert sum(item.principal for item in items) == owed
    assert all(item.principal >= 0 and item.interest >= 0 for item in items)
    assert len(items) == (1 if kind is Repayment.BULLET else months)
    interest = sum(item.interest for item in items)
    assert schedule.total_cost == interest + fee + periodic * len(items) + gas
    assert schedule.total_cost == total_cost_of_credit(schedule.cash_flows)
