"""Fee estimation and replacement bumps.

The arithmetic is pure (integers in wei, `Decimal` multipliers, no floats) so that its laws can be
property-tested: the configured cap is never exceeded, the priority fee never exceeds the max
fee, and a replacement raises *both* EIP-1559 fields by at least 12.5 % — the price bump that
geth-derived nodes demand before they accept a transaction with an already-used nonce (anything
less is rejected as "replacement transaction underpriced"). Only `suggest_fees` talks to a node.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from web3 import Web3
from web3.exceptions import MethodUnavailable, Web3RPCError
from web3.types import RPCEndpoint

from chain_adapters.registry import ChainConfig

BUMP_NUMERATOR = 9  # 9/8 = +12.5 %
BUMP_DENOMINATOR = 8


@dataclass(frozen=True, slots=True)
class Eip1559Fees:
    max_fee_per_gas: int
    max_priority_fee_per_gas: int

    def tx_fields(self) -> dict[str, int]:
        return {
            "type": 2,
            "maxFeePerGas": self.max_fee_per_gas,
            "maxPriorityFeePerGas": self.max_priority_fee_per_gas,
        }

    @property
    def ceiling(self) -> int:
        """The most one unit of gas may cost."""
        return self.max_fee_per_gas


@dataclass(frozen=True, slots=True)
class LegacyFees:
    gas_price: int

    def tx_fields(self) -> dict[str, int]:
        return {"gasPrice": self.gas_price}

    @property
    def ceiling(self) -> int:
        return self.gas_price


Fees = Eip1559Fees | LegacyFees


def ceil_mul(value: int, multiplier: Decimal) -> int:
    """ceil(value * multiplier) in exact integer arithmetic (a Decimal is a ratio of ints)."""
    numerator, denominator = multiplier.as_integer_ratio()
    return -(-value * numerator // denominator)


def min_replacement(value: int) -> int:
    """The smallest fee a node accepts for a replacement: >= +12.5 % and strictly higher."""
    return max(-(-value * BUMP_NUMERATOR // BUMP_DENOMINATOR), value + 1)


def next_base_fee(base_fee: int, gas_used: int, gas_limit: int) -> int:
    """EIP-1559's base fee of the block after one with these figures (elasticity 2, 1/8 step).

    The transaction goes into a later block than the one we read, so estimating from the next
    base fee instead of the current one removes one block of guessing from the multiplier.
    """
    target = gas_limit // 2
    if target == 0 or gas_used == target:
        return base_fee
    if gas_used > target:
        return base_fee + max(base_fee * (gas_used - target) // target // 8, 1)
    return base_fee - base_fee * (target - gas_used) // target // 8


def estimate_eip1559(
    *,
    base_fee: int,
    suggested_priority: int | None,
    multiplier: Decimal,
    priority_cap: int,
    max_fee_cap: int,
) -> Eip1559Fees:
    """maxFee = ceil(baseFee * multiplier) + priority, capped at `max_fee_cap`.

    The priority fee is the node's suggestion bounded above by the configured priority fee (a
    node under spam can suggest absurd tips); without a suggestion the configured value is used.
    The multiplier gives head room for the base fee rising while the transaction waits (it can
    grow 12.5 % per full block).
    """
    priority = priority_cap if suggested_priority is None else min(suggested_priority, priority_cap)
    priority = max(priority, 0)
    max_fee = min(ceil_mul(base_fee, multiplier) + priority, max_fee_cap)
    return Eip1559Fees(max_fee_per_gas=max_fee, max_priority_fee_per_gas=min(priority, max_fee))


def estimate_legacy(*, gas_price: int, multiplier: Decimal, max_fee_cap: int) -> LegacyFees:
    """gasPrice = ceil(node gas price * multiplier), capped (same head room as for base fees)."""
    return LegacyFees(gas_price=min(ceil_mul(gas_price, multiplier), max_fee_cap))


def bump_eip1559(
    previous: Eip1559Fees, *, current: Eip1559Fees | None, max_fee_cap: int
) -> Eip1559Fees | None:
    """Fees for a replacement of `previous`, or None when the cap leaves no room to bump.

    Both fields rise by at least 12.5 %, and to the current estimate when that is higher (the
    market may have moved further than one bump).
    """
    priority = min_replacement(previous.max_priority_fee_per_gas)
    max_fee = min_replacement(previous.max_fee_per_gas)
    if current is not None:
        priority = max(priority, current.max_priority_fee_per_gas)
        max_fee = max(max_fee, current.max_fee_per_gas)
    max_fee = min(max(max_fee, priority), max_fee_cap)
    priority = min(priority, max_fee)  # a tip above the max fee is never paid anyway
    if max_fee < min_replacement(previous.max_fee_per_gas) or priority < min_replacement(
        previous.max_priority_fee_per_gas
    ):
        return None
    return Eip1559Fees(max_fee_per_gas=max_fee, max_priority_fee_per_gas=priority)


def bump_legacy(
    previous: LegacyFees, *, current: LegacyFees | None, max_fee_cap: int
) -> LegacyFees | None:
    gas_price = min_replacement(previous.gas_price)
    if current is not None:
        gas_price = max(gas_price, current.gas_price)
    gas_price = min(gas_price, max_fee_cap)
    if gas_price < min_replacement(previous.gas_price):
        return None
    return LegacyFees(gas_price=gas_price)


def bump(previous: Fees, *, current: Fees | None, max_fee_cap: int) -> Fees | None:
    if isinstance(previous, Eip1559Fees):
        return bump_eip1559(
            previous,
            current=current if isinstance(current, Eip1559Fees) else None,
            max_fee_cap=max_fee_cap,
        )
    return bump_legacy(
        previous,
        current=current if isinstance(current, LegacyFees) else None,
        max_fee_cap=max_fee_cap,
    )


@dataclass(frozen=True, slots=True)
class FeeQuote:
    """Fees to use now, and the (next block's) base fee they came from (None on legacy chains)."""

    fees: Fees
    base_fee: int | None


def suggest_fees(w3: Web3, chain: ChainConfig) -> FeeQuote:
    """Read the latest base fee / gas price and the node's tip suggestion; apply the config."""
    if chain.fee_model == "legacy":
        legacy = estimate_legacy(
            gas_price=int(w3.eth.gas_price),
            multiplier=chain.fee_multiplier,
            max_fee_cap=chain.max_fee_wei,
        )
        return FeeQuote(fees=legacy, base_fee=None)
    block = w3.eth.get_block("latest")
    base_fee = next_base_fee(
        int(block.get("baseFeePerGas", 0) or 0), int(block["gasUsed"]), int(block["gasLimit"])
    )
    try:
        # Directly, not via `w3.eth.max_priority_fee`, which silently falls back to a fee-history
        # heuristic we did not choose; without a suggestion the configured tip is used instead.
        raw = w3.manager.request_blocking(RPCEndpoint("eth_maxPriorityFeePerGas"), [])
        suggested: int | None = int(raw, 16) if isinstance(raw, str) else int(raw)
    except (MethodUnavailable, Web3RPCError):
        suggested = None
    fees = estimate_eip1559(
        base_fee=base_fee,
        suggested_priority=suggested,
        multiplier=chain.fee_multiplier,
        priority_cap=chain.priority_fee_wei,
        max_fee_cap=chain.max_fee_wei,
    )
    return FeeQuote(fees=fees, base_fee=base_fee)
