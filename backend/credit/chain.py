"""Reads the credit pipeline makes on-chain, through the adapter layer (never web3 directly).

One `ChainReader` per app (kept on `app.state`): adapters are built once per chain, read-only
(no engine, no signer). Only the ABI fragments the pipeline calls are declared here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from backend.config import Settings
from backend.credit.pricing.defi_rates import KinkedRateModel, PoolState
from chain_adapters.base import ContractCall
from chain_adapters.deploy import load_manifest
from chain_adapters.evm.adapter import EvmAdapter
from chain_adapters.registry import ChainRegistry
from chain_adapters.suite import CREDIT_AGGREGATOR


def _view(name: str, inputs: list[str], outputs: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "stateMutability": "view",
        "inputs": [{"name": f"a{i}", "type": t} for i, t in enumerate(inputs)],
        "outputs": [{"name": f"r{i}", "type": t} for i, t in enumerate(outputs)],
    }


POOL_ABI: list[dict[str, Any]] = [
    _view(name, [], ["uint256"])
    for name in (
        "baseRate",
        "slope1",
        "slope2",
        "optimalUtilization",
        "totalSupplied",
        "totalBorrowed",
    )
] + [_view("borrowRateAfter", ["uint256"], ["uint256"])]

FEED_ABI: list[dict[str, Any]] = [
    _view("decimals", [], ["uint8"]),
    _view("latestRoundData", [], ["uint80", "int256", "uint256", "uint256", "uint80"]),
]

AGGREGATOR_ABI: list[dict[str, Any]] = [_view("nonces", ["address"], ["uint256"])]

#: LoanState of ICreditAggregator.
LOAN_ACTIVE, LOAN_DEFAULTED, LOAN_CLOSED = 1, 2, 3


@dataclass(frozen=True)
class PoolSnapshot:
    model: KinkedRateModel
    state: PoolState
    rate_after: int  # the contract's own borrowRateAfter(amount), a ray


class ChainReader:
    """Adapters and manifest look-ups for the chains in the registry."""

    def __init__(self, settings: Settings, chains: ChainRegistry | None) -> None:
        self.settings = settings
        self.chains = chains
        self._adapters: dict[int, EvmAdapter] = {}

    def chain_ids(self) -> list[int]:
        return [chain.chain_id for chain in self.chains] if self.chains is not None else []

    def adapter(self, chain_id: int) -> EvmAdapter:
        if chain_id not in self._adapters:
            if self.chains is None:
                raise LookupError("no chains file is configured (CREDAGG_CHAINS_FILE)")
            self._adapters[chain_id] = EvmAdapter(self.chains.by_chain_id(chain_id))
        return self._adapters[chain_id]

    def aggregator(self, chain_id: int) -> str | None:
        """CreditAggregator's address from the chain's deployment manifest, if deployed."""
        if self.chains is None:
            return None
        chain = self.chains.by_chain_id(chain_id)
        manifest = load_manifest(self.settings.data_dir, chain.name)
        entry = manifest.get("contracts", {}).get(CREDIT_AGGREGATOR)
        return str(entry["address"]) if entry else None

    def _call(
        self, chain_id: int, address: str, abi: Any, fn: str, *args: Any, block: int | None = None
    ) -> Any:
        call = ContractCall(address, abi, fn, args)
        adapter = self.adapter(chain_id)
        return adapter.call(call) if block is None else adapter.call(call, block=block)

    def pool(self, chain_id: int, address: str, amount: int) -> PoolSnapshot:
        """The pool's model and books, and its own `borrowRateAfter(amount)` (if it can lend)."""

        def read(fn: str, *args: Any) -> int:
            return int(self._call(chain_id, address, POOL_ABI, fn, *args))

        model = KinkedRateModel(
            base_rate=read("baseRate"),
            slope1=read("slope1"),
            slope2=read("slope2"),
            optimal_utilization=read("optimalUtilization"),
        )
        state = PoolState(
            total_supplied=read("totalSupplied"), total_borrowed=read("totalBorrowed")
        )
        rate_after = read("borrowRateAfter", amount) if amount <= state.cash else -1
        return PoolSnapshot(model, state, rate_after)

    def feed_price(self, chain_id: int, feed: str, *, block: int | None = None) -> tuple[int, int]:
        """(answer, decimals) of a Chainlink-style feed (at `block`, else the latest)."""
        decimals = int(self._call(chain_id, feed, FEED_ABI, "decimals", block=block))
        answer = int(self._call(chain_id, feed, FEED_ABI, "latestRoundData", block=block)[1])
        return answer, decimals

    def gas_price(self, chain_id: int, *, block: int | None = None) -> int:
        """Wei per gas a transaction would pay now (or at `block`): base fee + the chain's
        priority fee."""
        adapter = self.adapter(chain_id)
        base_fee = adapter.block("latest" if block is None else block).base_fee_per_gas or 0
        priority = int(adapter.chain.priority_fee_gwei * 10**9)
        return base_fee + priority

    def nonce(self, chain_id: int, borrower: str) -> int:
        aggregator = self.aggregator(chain_id)
        if aggregator is None:
            return 0
        account = to_checksum_address(borrower)
        return int(self._call(chain_id, aggregator, AGGREGATOR_ABI, "nonces", account))
