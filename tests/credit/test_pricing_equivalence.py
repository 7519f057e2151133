"""The optimised pricing gives exactly the outputs of the code it replaced, digit for digit.

Why exact and not "equal to 1e-12": the rates are published to 27 decimals in the quote document,
whose canonical JSON is hashed into the EIP-712 `quoteHash` the borrower signs, and a Newton
solve stopped at 1e-12 leaves a path-dependent error near 1e-24. So every Decimal is compared by
its spelling (`repr`, which also tells 0.10 from 0.1) and every document byte for byte, against
the frozen copy of the old code in tests/credit/_pricing_reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal, localcontext
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from backend.credit import normalise as new_normalise
from backend.credit.assets import AssetEntry
from backend.credit.pricing import (
    CashFlow,
    FeeTreatment,
    LoanTerms,
    PricingError,
    Repayment,
    TimeBasis,
    UnitPeriod,
    eu_aprc,
    price_loan,
    regz_apr,
)
from backend.credit.pricing import cashflows as old_cashflows
from backend.credit.pricing import schedule as old_schedule
from backend.credit.pricing.eu_aprc import _probe_power
from backend.credit.sources import RawQuote
from backend.receipts.canonical import canonical_json
from tests.credit._pricing_reference import eu_aprc as old_eu
from tests.credit._pricing_reference import normalise as old_normalise
from tests.credit._pricing_reference import quote as old_quote
from tests.credit._pricing_reference import regz as old_regz

D = Decimal
SAME = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

starts = st.dates(date(1999, 1, 1), date(2101, 12, 31))
# Smallest units: 1 (dust), typical, up to beyond the 40 digits of the solver's context.
principals = st.one_of(
    st.sampled_from([1, 2, 999, 10**6, 10**18, 10**40, 10**45 + 7]),
    st.integers(1, 10**30),
)
# 0, four-decimal lender rates, 27-decimal ray rates, and the 100 (10,000 %) maximum.
rates = st.one_of(
    st.sampled_from([D(0), D("0.0001"), D("0.1"), D("0.10"), D("1"), D("99.9999"), D(100)]),
    st.integers(0, 40_000).map(lambda n: D(n).scaleb(-4)),
    st.integers(0, 10**27).map(lambda n: D(n).scaleb(-27)),
)


def spelled(value: Any) -> Any:
    """A comparable form of a pricing result: Decimals by repr, dataclasses field by field."""
    if isinstance(value, Decimal):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return [spelled(item) for item in value]
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: spelled(getattr(value, f.name)) for f in fields(value)}
    if hasattr(value, "value") and isinstance(value.value, str):  # StrEnum: old and new classes
        return value.value
    return value


def outcome(fn: Callable[[], Any]) -> Any:
    """What a call gives: its spelled result, or its error's type name, message and hint."""
    try:
        return ("ok", spelled(fn()))
    except PricingError as error:
        return ("error", type(error).__name__, error.detail, error.hint)


def old_terms(terms: LoanTerms) -> Any:
    kwargs = {f.name: getattr(terms, f.name) for f in fields(terms)}
    kwargs["repayment"] = old_schedule.Repayment(terms.repayment.value)
    kwargs["fee_treatment"] = old_schedule.FeeTreatment(terms.fee_treatment.value)
    return old_schedule.LoanTerms(**kwargs)


@st.composite
def loan_terms(draw: st.DrawFn, repayment: Repayment | None = None) -> LoanTerms:
    kind = repayment or draw(st.sampled_from(list(Repayment)))
    principal = draw(principals)
    # Monthly schedules discount every installment: keep them short enough to stay quick.
    months = draw(st.integers(1, 600 if kind is Repayment.BULLET else 36))
    start = draw(starts)
    first_payment = None
    if kind is not Repayment.BULLET and draw(st.booleans()):
        first_payment = start + timedelta(days=draw(st.integers(1, 59)))
    fee = draw(st.sampled_from([0, 1, principal // 100, principal - 1]) | st.integers(0, 10**20))
    return LoanTerms(
        principal=principal,
        nominal_rate=draw(rates),
        term_months=months,
        start=start,
        repayment=kind,
        first_payment=first_payment,
        origination_fee=fee,
        fee_treatment=draw(st.sampled_from(list(FeeTreatment))),
        periodic_fee=draw(st.sampled_from([0, 5]) | st.integers(0, 10**6)),
        gas_cost=draw(st.sampled_from([0, 1]) | st.integers(0, 10**18)),
    )


def assert_same_pricing(terms: LoanTerms, basis: TimeBasis) -> None:
    old = outcome(lambda: old_quote.price_loan(old_terms(terms), basis=old_eu.TimeBasis(basis)))
    assert outcome(lambda: price_loan(terms, basis=basis)) == old


@SAME
@given(terms=loan_terms(Repayment.BULLET), basis=st.sampled_from(list(TimeBasis)))
@example(
    terms=LoanTerms(
        principal=10**9,
        nominal_rate=D(0),
        term_months=1,
        start=date(2026, 1, 31),
        repayment=Repayment.BULLET,
    ),
    basis=TimeBasis.EQUAL_MONTHS,
)
@example(
    terms=LoanTerms(
        principal=1,
        nominal_rate=D(100),
        term_months=600,
        start=date(2024, 2, 29),
        repayment=Repayment.BULLET,
        gas_cost=10**18,
    ),
    basis=TimeBasis.EQUAL_MONTHS,
)
@example(
    terms=LoanTerms(
        principal=10**45 + 7,
        nominal_rate=D("0.123456789012345678901234567"),
        term_months=7,
        start=date(2026, 11, 23),
        repayment=Repayment.BULLET,
        origination_fee=10**44,
    ),
    basis=TimeBasis.CALENDAR_DAYS,
)
def test_bullets_price_exactly_as_before(terms: LoanTerms, basis: TimeBasis) -> None:
    """Every quote normalise() prices is a bullet: the main path, over the widest inputs."""
    assert_same_pricing(terms, basis)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(terms=loan_terms(), basis=st.sampled_from(list(TimeBasis)))
def test_monthly_schedules_price_exactly_as_before(terms: LoanTerms, basis: TimeBasis) -> None:
    assert_same_pricing(terms, basis)


@st.composite
def cash_flows(draw: st.DrawFn) -> list[CashFlow]:
    """Arbitrary dated flows, drawdowns and repayments, possibly with no rate at all."""
    start = draw(starts)
    count = draw(st.integers(1, 5))
    flows = [CashFlow.drawdown(start, draw(st.integers(1, 10**24)))]
    for _ in range(count):
        on = start + timedelta(days=draw(st.integers(0, 4000)))
        amount = draw(st.integers(0, 10**24))
        make = CashFlow.drawdown if draw(st.integers(0, 5)) == 0 else CashFlow.repayment
        flows.append(make(on, amount))
    return flows


@SAME
@given(flows=cash_flows(), basis=st.sampled_from(list(TimeBasis)))
@example(  # a rate above 300 %: the bracket probes 1, 4 and 16
    flows=[CashFlow.drawdown(date(2026, 1, 1), 100), CashFlow.repayment(date(2026, 2, 1), 900)],
    basis=TimeBasis.EQUAL_MONTHS,
)
@example(  # a negative rate: the bracket probes the lower bound
    flows=[CashFlow.drawdown(date(2026, 1, 1), 100), CashFlow.repayment(date(2027, 5, 3), 60)],
    basis=TimeBasis.CALENDAR_DAYS,
)
@example(  # nothing repaid but a dust amount: no rate below the upper bound
    flows=[CashFlow.drawdown(date(2026, 1, 1), 10**24), CashFlow.repayment(date(2026, 1, 2), 1)],
    basis=TimeBasis.EQUAL_MONTHS,
)
def test_rate_equations_solve_exactly_as_before(flows: list[CashFlow], basis: TimeBasis) -> None:
    """The solvers on any flows, including ones that bracket far out or have no solution."""
    old_flows = [
        old_cashflows.CashFlow(f.on, f.amount, old_cashflows.Direction(f.direction.value))
        for f in flows
    ]
    old = outcome(lambda: old_eu.eu_aprc(old_flows, basis=old_eu.TimeBasis(basis)))
    assert outcome(lambda: eu_aprc(flows, basis=basis)) == old
    for unit in (
        UnitPeriod(months=1),
        UnitPeriod(months=3),
        UnitPeriod(days=7),
        UnitPeriod(months=12),
    ):
        old_unit = old_regz.UnitPeriod(unit.months, unit.days)
        old = outcome(lambda u=old_unit: old_regz.regz_apr(old_flows, u))
        assert outcome(lambda u=unit: regz_apr(flows, u)) == old


@pytest.mark.parametrize(
    ("prec", "rounding"),
    [(28, ROUND_HALF_EVEN), (28, ROUND_DOWN), (60, ROUND_UP), (40, ROUND_DOWN)],
)
def test_caches_never_carry_a_result_into_another_decimal_context(prec: int, rounding: str) -> None:
    """The probe-power cache is filled in the default context first, then asked again in
    another: a cache keyed on the inputs alone would hand back the default context's digits.
    Eleven terms, each with its own fractional probe powers, so a stale digit cannot hide."""
    _probe_power.cache_clear()
    all_terms = [
        LoanTerms(
            principal=10**12 + 3,
            nominal_rate=D("0.0917"),
            term_months=months,
            start=date(2026, 3, 31),
            repayment=Repayment.BULLET,
            origination_fee=10**9,
        )
        for months in range(1, 12)
    ]
    for terms in all_terms:
        price_loan(terms)
    assert _probe_power.cache_info().currsize > 0
    with localcontext() as ctx:
        ctx.prec, ctx.rounding = prec, rounding
        for terms in all_terms:
            assert outcome(lambda t=terms: price_loan(t)) == outcome(
                lambda t=terms: old_quote.price_loan(old_terms(t))
            )


USDC = AssetEntry(symbol="USDC", chain_id=8453, address="0x" + "ab" * 20, decimals=6)
WETH = AssetEntry(
    symbol="WETH",
    chain_id=8453,
    address="0x" + "cd" * 20,
    decimals=18,
    liquidation_threshold=D("0.8"),
)


@SAME
@given(
    amount=principals,
    term_days=st.integers(1, 120).map(lambda months: 30 * months),
    apr=rates,
    fee=st.sampled_from([0, 1]) | st.integers(0, 10**20),
    gas_wei=st.sampled_from([0]) | st.integers(0, 10**17),
    start=starts,
    secured=st.booleans(),
    priced=st.booleans(),
    aggregator=st.sampled_from([None, "0x" + "ee" * 20]),
)
def test_normalise_writes_the_same_document_figures_and_typed_data(
    amount: int,
    term_days: int,
    apr: Decimal,
    fee: int,
    gas_wei: int,
    start: date,
    secured: bool,
    priced: bool,
    aggregator: str | None,
) -> None:
    """normalise() end to end: the receipt document (and so its canonical bytes and quoteHash),
    the figures, the ranking entry and the EIP-712 typed data."""
    prices = (
        new_normalise.Prices(D("0.9998"), D("3012.55"), D("3012.55"))
        if priced
        else new_normalise.Prices()
    )
    kwargs: dict[str, Any] = {
        "quote_id": "q-1",
        "provider_id": 7,
        "source": "traditional",
        "amount": amount,
        "term_days": term_days,
        "debt": USDC,
        "collateral": new_normalise.Collateral(WETH, 10**18) if secured else None,
        "prices": prices,
        "gas_wei": gas_wei,
        "start": start,
        "expires_at": datetime(2026, 11, 23, 12, tzinfo=UTC),
        "borrower": "0x" + "12" * 20,
        "aggregator": aggregator,
        "nonce": 3,
    }
    raw = RawQuote(apr, fee, "0x" + "34" * 20)

    def run(fn: Callable[..., Any]) -> Any:
        try:
            result = fn(raw, **kwargs)
        except Exception as error:  # pricing or receipt-schema refusals: the same ones, alike
            return ("error", type(error).__name__, str(error))
        return (
            canonical_json(result.document),
            result.figures,
            result.typed_data,
            spelled(result.ranking),
        )

    assert run(new_normalise.normalise) == run(old_normalise.normalise)
