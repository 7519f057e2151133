"""The DeFi pools' kinked rate model: our integer port against an independent reference, and
against the deployed MockLendingPool on the devnets, before and after a real borrow."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3

from backend.credit.pricing import (
    RAY,
    SECONDS_PER_YEAR,
    InsufficientPoolLiquidity,
    InvalidLoanTerms,
    KinkedRateModel,
    PoolState,
    apy,
    borrow_rate_after,
    ray_to_decimal,
    utilization_after,
)
from hardhat_fixtures.scenarios import POOLS

D = Decimal
rays = st.integers(0, 5 * RAY)
kinks = st.integers(1, RAY - 1)


def reference_rate(u: int, base: int, s1: int, s2: int, opt: int) -> int:
    """MockLendingPool.rateAt re-derived from its NatSpec: floor divisions, two slopes."""
    if u <= opt:
        return base + (s1 * u) // opt
    return base + s1 + (s2 * (u - opt)) // (RAY - opt)


@settings(max_examples=200, deadline=None)
@given(
    base=rays, s1=rays, s2=rays, opt=kinks,
    supplied=st.integers(1, 10**30),
    borrowed_share=st.fractions(0, 1),
    amount_share=st.fractions(0, 1),
)  # fmt: skip
def test_rate_after_borrow_matches_reference(
    base: int,
    s1: int,
    s2: int,
    opt: int,
    supplied: int,
    borrowed_share: Fraction,
    amount_share: Fraction,
) -> None:
    """Utilisation after the borrow is (borrows + amount) / (cash + borrows), floored to a ray."""
    borrowed = int(supplied * borrowed_share)
    amount = max(1, int((supplied - borrowed) * amount_share))
    pool = PoolState(supplied, borrowed)
    model = KinkedRateModel(base, s1, s2, opt)
    if amount > pool.cash:
        with pytest.raises(InsufficientPoolLiquidity):
            borrow_rate_after(model, pool, amount)
        return
    u = (borrowed + amount) * RAY // (pool.cash + borrowed)
    assert utilization_after(pool, amount) == u
    assert borrow_rate_after(model, pool, amount) == reference_rate(u, base, s1, s2, opt)


@settings(max_examples=100, deadline=None)
@given(base=rays, s1=rays, s2=rays, opt=kinks, u1=st.integers(0, RAY), u2=st.integers(0, RAY))
def test_rate_is_monotone_and_continuous_at_the_kink(
    base: int, s1: int, s2: int, opt: int, u1: int, u2: int
) -> None:
    model = KinkedRateModel(base, s1, s2, opt)
    low, high = sorted((u1, u2))
    assert model.rate_at(low) <= model.rate_at(high)
    assert model.rate_at(opt) == base + s1
    assert model.rate_at(0) == base and model.rate_at(RAY) == base + s1 + s2


def test_apy_from_per_second_and_per_block_compounding() -> None:
    """10 % APR accrued per second: e^0.1 - 1 = 10.5170918 % to 1e-8; yearly accrual: 10 %."""
    apr = ray_to_decimal(RAY // 10)
    assert apr == D("0.1")
    assert abs(apy(apr) - (D("0.1").exp() - 1)) < D("1e-8")
    assert apy(apr, 1) == D("0.1")
    blocks = SECONDS_PER_YEAR // 12
    assert apy(apr, 1) < apy(apr, 12) < apy(apr, blocks) < apy(apr)


def test_invalid_inputs_are_client_errors() -> None:
    with pytest.raises(InvalidLoanTerms):
        KinkedRateModel(0, 1, 1, RAY)
    with pytest.raises(InvalidLoanTerms):
        utilization_after(PoolState(10, 0), 0)
    with pytest.raises(InsufficientPoolLiquidity, match="idle liquidity"):
        utilization_after(PoolState(10, 4), 7)


def test_matches_the_deployed_pools_before_and_after_a_real_borrow(
    load_fixture: Any, chains: Any, compiled: Any, accounts: Any
) -> None:
    """On each devnet's pool (different parameters and utilisation), our rate for a borrow of
    `amount` equals the contract's borrowRateAfter(amount), and, once that borrow is actually
    made on-chain, the contract's borrowRate()."""
    market = load_fixture("two_chain_market")
    for devnet in chains:
        params = POOLS[devnet.chain_id]
        w3 = Web3(Web3.HTTPProvider(devnet.rpc_url))
        address = market.chains[devnet.chain_id].contracts[params.label]
        pool = w3.eth.contract(address=address, abi=compiled.get("MockLendingPool").abi)
        f = pool.functions
        model = KinkedRateModel(
            f.baseRate().call(), f.slope1().call(), f.slope2().call(),
            f.optimalUtilization().call(),
        )  # fmt: skip
        state = PoolState(f.totalSupplied().call(), f.totalBorrowed().call())
        assert state.cash == f.availableLiquidity().call()
        for amount in (1, 12_345 * 10**6, state.cash // 3, state.cash):
            assert borrow_rate_after(model, state, amount) == f.borrowRateAfter(amount).call()
        amount = state.cash // 2 + 7
        before = model.rate_at(f.utilization().call())
        assert before == f.borrowRate().call()
        quoted = borrow_rate_after(model, state, amount)
        assert quoted > before  # priced at the utilisation after the borrow, not before
        borrower = accounts[7].address
        tx = f.borrow(amount).transact({"from": borrower})
        assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
        assert f.borrowRate().call() == quoted
