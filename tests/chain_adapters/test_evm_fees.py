"""Laws of the fee arithmetic (hypothesis) and the node-facing estimate on Anvil."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from chain_adapters.devnet import Devnet
from chain_adapters.evm import EvmAdapter
from chain_adapters.evm.fees import (
    Eip1559Fees,
    LegacyFees,
    bump_eip1559,
    bump_legacy,
    ceil_mul,
    estimate_eip1559,
    estimate_legacy,
    min_replacement,
    next_base_fee,
    suggest_fees,
)
from tests.chain_adapters.conftest import chain_config

GWEI = 10**9
wei = st.integers(min_value=0, max_value=10_000 * GWEI)
positive_wei = st.integers(min_value=1, max_value=10_000 * GWEI)
multipliers = st.decimals(
    min_value=Decimal("1"), max_value=Decimal("10"), places=3, allow_nan=False
)


def at_least_12_5_percent_more(new: int, old: int) -> bool:
    return new * 8 >= old * 9 and new > old


@given(base=wei, suggested=st.none() | wei, mult=multipliers, prio_cap=wei, cap=positive_wei)
def test_estimate_respects_caps(
    base: int, suggested: int | None, mult: Decimal, prio_cap: int, cap: int
) -> None:
    fees = estimate_eip1559(
        base_fee=base,
        suggested_priority=suggested,
        multiplier=mult,
        priority_cap=prio_cap,
        max_fee_cap=cap,
    )
    assert 0 <= fees.max_priority_fee_per_gas <= fees.max_fee_per_gas <= cap
    assert fees.max_priority_fee_per_gas <= prio_cap
    if suggested is not None:
        assert fees.max_priority_fee_per_gas <= suggested
    # when the cap allows it, the max fee covers the multiplied base fee plus the tip
    if (
        ceil_mul(base, mult) + min(suggested if suggested is not None else prio_cap, prio_cap)
        <= cap
    ):
        assert fees.max_fee_per_gas >= base * mult + fees.max_priority_fee_per_gas


@given(price=wei, mult=multipliers, cap=positive_wei)
def test_legacy_estimate_respects_cap(price: int, mult: Decimal, cap: int) -> None:
    fees = estimate_legacy(gas_price=price, multiplier=mult, max_fee_cap=cap)
    assert fees.gas_price <= cap
    assert fees.gas_price == min(ceil_mul(price, mult), cap)


@settings(max_examples=500)
@given(max_fee=positive_wei, prio=wei, cur_max=st.none() | wei, cur_prio=wei, cap=positive_wei)
def test_bump_is_at_least_12_5_percent_and_capped(
    max_fee: int, prio: int, cur_max: int | None, cur_prio: int, cap: int
) -> None:
    assume(prio <= max_fee)
    previous = Eip1559Fees(max_fee_per_gas=max_fee, max_priority_fee_per_gas=prio)
    current = (
        None
        if cur_max is None
        else Eip1559Fees(max_fee_per_gas=cur_max, max_priority_fee_per_gas=min(cur_prio, cur_max))
    )
    bumped = bump_eip1559(previous, current=current, max_fee_cap=cap)
    # None exactly when the cap leaves no room for a valid replacement
    assert (bumped is None) == (min_replacement(max_fee) > cap)
    if bumped is None:
        return
    assert at_least_12_5_percent_more(bumped.max_fee_per_gas, max_fee)
    assert at_least_12_5_percent_more(bumped.max_priority_fee_per_gas, prio)
    assert bumped.max_priority_fee_per_gas <= bumped.max_fee_per_gas <= cap
    if current is not None:
        assert bumped.max_fee_per_gas >= min(current.max_fee_per_gas, cap)


@given(price=positive_wei, current=st.none() | wei, cap=positive_wei)
def test_legacy_bump_is_at_least_12_5_percent_and_capped(
    price: int, current: int | None, cap: int
) -> None:
    bumped = bump_legacy(
        LegacyFees(price),
        current=None if current is None else LegacyFees(current),
        max_fee_cap=cap,
    )
    assert (bumped is None) == (min_replacement(price) > cap)
    if bumped is None:
        return
    assert at_least_12_5_percent_more(bumped.gas_price, price)
    assert bumped.gas_price <= cap


@given(base=wei, half=st.integers(min_value=1, max_value=30_000_000), data=st.data())
def test_next_base_fee_moves_at_most_one_eighth(base: int, half: int, data: st.DataObject) -> None:
    limit = 2 * half  # gas used never exceeds the limit = 2 x target
    used = data.draw(st.integers(min_value=0, max_value=limit))
    following = next_base_fee(base, used, limit)
    assert base * 7 / 8 <= following <= base * 9 / 8 + 1
    if used > half:
        assert following > base
    elif used < half:
        assert following <= base
    else:
        assert following == base


@given(value=wei, mult=multipliers)
def test_ceil_mul_is_exact_ceiling(value: int, mult: Decimal) -> None:
    result = ceil_mul(value, mult)
    assert result >= value * mult > result - 1


def test_bump_of_zero_tip_still_rises() -> None:
    bumped = bump_eip1559(
        Eip1559Fees(max_fee_per_gas=10, max_priority_fee_per_gas=0), current=None, max_fee_cap=100
    )
    assert bumped == Eip1559Fees(max_fee_per_gas=12, max_priority_fee_per_gas=1)


def test_suggest_fees_on_anvil(devnet_a: Devnet) -> None:
    config = chain_config(
        devnet_a,
        fee_multiplier=Decimal("2"),
        priority_fee_gwei=Decimal("0.5"),
        max_fee_gwei=Decimal("100"),
    )
    adapter = EvmAdapter(config)
    quote = suggest_fees(adapter.w3, config)
    latest = adapter.w3.eth.get_block("latest")
    base = next_base_fee(latest["baseFeePerGas"], latest["gasUsed"], latest["gasLimit"])
    assert quote.base_fee == base
    assert isinstance(quote.fees, Eip1559Fees)
    assert quote.fees.max_priority_fee_per_gas == GWEI // 2  # anvil suggests 1 gwei; capped
    assert quote.fees.max_fee_per_gas == 2 * base + GWEI // 2


def test_suggest_legacy_fees_on_anvil(devnet_a: Devnet) -> None:
    config = chain_config(devnet_a, fee_model="legacy", max_fee_gwei=Decimal("1"))
    quote = suggest_fees(EvmAdapter(config).w3, config)
    assert quote.fees == LegacyFees(gas_price=GWEI)  # node price x 1.25, capped at 1 gwei
