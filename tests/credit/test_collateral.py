"""Secured quotes: LTV, health factor and liquidation price, with token decimals."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.credit.pricing import (
    InvalidCollateral,
    TokenAmount,
    collateral_metrics,
    price_from_feed,
)

D = Decimal
# The library computes at 40 digits; these checks recompute in the default 28-digit context.
REL = D("1e-25")


def test_worked_example_usdc_against_weth() -> None:
    """Borrow 1,500 USDC (6 decimals) against 1 WETH (18 decimals) at $3,000 (an 8-decimal feed
    answer of 300000000000), liquidation threshold 82.5 %: LTV 50 %, HF 1.65, and the position
    is liquidated when ETH falls to 1500 / 0.825 = $1,818.18..."""
    eth = price_from_feed(300_000_000_000, 8)
    assert eth == D(3000)
    debt = TokenAmount(1_500 * 10**6, 6, price_from_feed(100_000_000, 8))
    collateral = TokenAmount(10**18, 18, eth)
    metrics = collateral_metrics(debt, collateral, D("0.825"))
    assert metrics.ltv == D("0.5")
    assert metrics.health_factor == D("1.65")
    assert abs(metrics.liquidation_price - D(1500) / D("0.825")) < metrics.liquidation_price * REL


amounts = st.integers(1, 10**30)
decimals = st.integers(0, 24)
prices = st.decimals(D("1e-6"), D("1e6"), places=8, allow_nan=False, allow_infinity=False).filter(
    lambda p: p > 0
)
thresholds = st.integers(1, 10_000).map(lambda bps: D(bps) / 10_000)


@settings(max_examples=200, deadline=None)
@given(
    debt_amount=amounts, debt_decimals=decimals, debt_price=prices,
    coll_amount=amounts, coll_decimals=decimals, coll_price=prices, threshold=thresholds,
)  # fmt: skip
def test_ltv_health_factor_and_liquidation_price_identities(
    debt_amount: int,
    debt_decimals: int,
    debt_price: Decimal,
    coll_amount: int,
    coll_decimals: int,
    coll_price: Decimal,
    threshold: Decimal,
) -> None:
    """LTV x HF = liquidation threshold; liquidation price = collateral price / HF; at the
    liquidation price the health factor is exactly 1."""
    debt = TokenAmount(debt_amount, debt_decimals, debt_price)
    collateral = TokenAmount(coll_amount, coll_decimals, coll_price)
    m = collateral_metrics(debt, collateral, threshold)
    rel = REL
    assert abs(m.ltv * m.health_factor - threshold) <= threshold * rel
    assert abs(m.liquidation_price - coll_price / m.health_factor) <= m.liquidation_price * rel
    at_liquidation = TokenAmount(coll_amount, coll_decimals, m.liquidation_price)
    hf = collateral_metrics(debt, at_liquidation, threshold).health_factor
    assert abs(hf - 1) <= rel


@pytest.mark.parametrize(
    ("debt", "collateral", "threshold", "match"),
    [
        (TokenAmount(0, 6, D(1)), TokenAmount(1, 18, D(1)), D("0.8"), "debt"),
        (TokenAmount(1, 6, D(1)), TokenAmount(1, 18, D(0)), D("0.8"), "collateral"),
        (TokenAmount(1, 6, D(1)), TokenAmount(1, 99, D(1)), D("0.8"), "decimals"),
        (TokenAmount(1, 6, D(1)), TokenAmount(1, 18, D(1)), D("1.2"), "threshold"),
    ],
)
def test_invalid_positions_are_client_errors(
    debt: TokenAmount, collateral: TokenAmount, threshold: Decimal, match: str
) -> None:
    with pytest.raises(InvalidCollateral, match=match) as raised:
        collateral_metrics(debt, collateral, threshold)
    assert raised.value.status_code == 422 and raised.value.hint


def test_feed_answer_must_be_positive() -> None:
    with pytest.raises(InvalidCollateral):
        price_from_feed(0, 8)
