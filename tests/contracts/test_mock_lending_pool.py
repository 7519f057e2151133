"""MockLendingPool: the kinked (Aave-v3-style) rate model against a Python reference, and the
pool's bookkeeping."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3.contract import Contract

from tests.contracts._support import RAY, ZERO_ADDRESS, Chain, System

RPC_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
VIEW_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def params(pool: Contract) -> tuple[int, int, int, int]:
    f = pool.functions
    return f.baseRate().call(), f.slope1().call(), f.slope2().call(), f.optimalUtilization().call()


def ref_rate(u: int, base: int, slope1: int, slope2: int, optimal: int) -> int:
    if u <= optimal:
        return base + slope1 * u // optimal
    return base + slope1 + slope2 * (u - optimal) // (RAY - optimal)


def ref_utilization(borrowed: int, supplied: int) -> int:
    return 0 if supplied == 0 else borrowed * RAY // supplied


def supply(system: System, pool: Contract, who: object, amount: int) -> object:
    chain = system.chain
    chain.tx(system.usdc.functions.mint(who.address, amount), who)  # type: ignore[attr-defined]
    chain.tx(system.usdc.functions.approve(pool.address, amount), who)  # type: ignore[attr-defined]
    return chain.tx(pool.functions.supply(amount), who)  # type: ignore[arg-type]


def test_two_pools_have_different_parameters(system: System) -> None:
    assert params(system.pool_a) == (0, 4 * RAY // 100, 60 * RAY // 100, 80 * RAY // 100)
    assert params(system.pool_b) == (RAY // 100, 7 * RAY // 100, 300 * RAY // 100, 45 * RAY // 100)
    u = 70 * RAY // 100
    assert system.pool_a.functions.rateAt(u).call() != system.pool_b.functions.rateAt(u).call()


@VIEW_SETTINGS
@given(use_b=st.booleans(), u=st.integers(0, RAY))
def test_rate_at_matches_reference(system: System, use_b: bool, u: int) -> None:
    pool = system.pool_b if use_b else system.pool_a
    assert pool.functions.rateAt(u).call() == ref_rate(u, *params(pool))


def test_rate_at_kink_and_ends(system: System) -> None:
    pool = system.pool_a
    base, slope1, slope2, optimal = params(pool)
    assert pool.functions.rateAt(0).call() == base
    assert pool.functions.rateAt(optimal).call() == base + slope1
    assert pool.functions.rateAt(RAY).call() == base + slope1 + slope2


@RPC_SETTINGS
@given(
    use_b=st.booleans(),
    supplied=st.integers(1, 10**15),
    borrow_share=st.integers(0, 10_000),
    extra_share=st.integers(0, 10_000),
)
def test_pool_rates_match_reference(
    system: System, use_b: bool, supplied: int, borrow_share: int, extra_share: int
) -> None:
    chain = system.chain
    pool = system.pool_b if use_b else system.pool_a
    model = params(pool)
    with chain.isolated():
        supply(system, pool, system.provider, supplied)
        borrowed = supplied * borrow_share // 10_000
        if borrowed:
            chain.tx(pool.functions.borrow(borrowed), system.borrower)
        f = pool.functions
        u = ref_utilization(borrowed, supplied)
        assert (f.totalSupplied().call(), f.totalBorrowed().call()) == (supplied, borrowed)
        assert f.utilization().call() == u
        assert f.borrowRate().call() == ref_rate(u, *model)
        assert f.supplyRate().call() == ref_rate(u, *model) * u // RAY
        extra = (supplied - borrowed) * extra_share // 10_000
        u_after = ref_utilization(borrowed + extra, supplied)
        assert f.borrowRateAfter(extra).call() == ref_rate(u_after, *model)
        assert f.availableLiquidity().call() == supplied - borrowed


def test_borrow_rate_after_beyond_liquidity_reverts(system: System, chain: Chain) -> None:
    pool = system.pool_a
    assert chain.call_revert_of(pool.functions.borrowRateAfter(1)) == (
        "InsufficientLiquidity",
        (0, 1),
    )
    assert pool.functions.borrowRateAfter(0).call() == pool.functions.baseRate().call()
    supply(system, pool, system.provider, 1_000)
    assert chain.call_revert_of(pool.functions.borrowRateAfter(1_001)) == (
        "InsufficientLiquidity",
        (1_000, 1_001),
    )


def test_pool_flows_events_and_errors(system: System, chain: Chain) -> None:
    pool = system.pool_b
    f = pool.functions
    model = params(pool)
    receipt = supply(system, pool, system.provider, 1_000_000)
    (event,) = chain.events(pool, "Supplied", receipt)
    assert dict(event["args"]) == {
        "account": system.provider.address,
        "amount": 1_000_000,
        "borrowRate": model[0],
        "utilization": 0,
    }

    receipt = chain.tx(f.borrow(600_000), system.borrower)
    u = ref_utilization(600_000, 1_000_000)
    (event,) = chain.events(pool, "Borrowed", receipt)
    assert (event["args"]["borrowRate"], event["args"]["utilization"]) == (ref_rate(u, *model), u)
    assert system.usdc.functions.balanceOf(system.borrower.address).call() == 600_000
    chain.expect_revert(
        f.borrow(400_001), system.borrower, "InsufficientLiquidity", 400_000, 400_001
    )
    chain.expect_revert(
        f.withdraw(400_001), system.provider, "InsufficientLiquidity", 400_000, 400_001
    )
    chain.expect_revert(
        f.withdraw(1_000_001), system.provider, "ExceedsBalance", 1_000_000, 1_000_001
    )
    chain.expect_revert(f.withdraw(1), system.outsider, "ExceedsBalance", 0, 1)
    for fn in (f.supply(0), f.borrow(0), f.repay(0), f.withdraw(0)):
        chain.expect_revert(fn, system.provider, "ZeroAmount")

    chain.tx(system.usdc.functions.approve(pool.address, 600_000), system.borrower)
    chain.expect_revert(f.repay(600_001), system.borrower, "ExceedsBalance", 600_000, 600_001)
    receipt = chain.tx(f.repay(100_000), system.borrower)
    u = ref_utilization(500_000, 1_000_000)
    (event,) = chain.events(pool, "Repaid", receipt)
    assert (event["args"]["amount"], event["args"]["utilization"]) == (100_000, u)
    receipt = chain.tx(f.withdraw(500_000), system.provider)
    (event,) = chain.events(pool, "Withdrawn", receipt)
    assert event["args"]["utilization"] == RAY  # 500k borrowed of 500k supplied
    assert event["args"]["borrowRate"] == sum(model[:3])
    assert (
        f.suppliedOf(system.provider.address).call(),
        f.borrowedOf(system.borrower.address).call(),
    ) == (
        500_000,
        500_000,
    )


def test_constructor_validates_model(system: System, chain: Chain) -> None:
    artifact = chain.compiled.get("MockLendingPool")
    factory = chain.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    for args in [
        (system.usdc.address, 0, 1, 1, 0),
        (system.usdc.address, 0, 1, 1, RAY),
        (ZERO_ADDRESS, 0, 1, 1, RAY // 2),
    ]:
        assert chain.revert_of(factory.constructor(*args), system.admin) == ("InvalidRateModel", ())
