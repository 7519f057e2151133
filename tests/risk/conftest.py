"""Risk tests: the watcher's fixtures (fresh migrated database, the market scenario) plus a
driver that sends real loan, collateral and price transactions on devnet A."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from eth_utils import keccak
from web3 import Web3

from backend.watcher.ingest import ChainWatcher
from backend.watcher.projections import default_registry
from chain_adapters.acceptance import sign_acceptance, terms_tuple
from chain_adapters.devnet import Devnet
from chain_adapters.evm.adapter import EvmAdapter
from tests.watcher.conftest import engine, factory, market, watcher_settings  # noqa: F401

WATCHED = ("CreditAggregator", "CollateralManager", "ETH/USD", "USDC/USD")


@dataclass
class Lending:
    """The market's contracts on one devnet, driven by its (unlocked Anvil) accounts."""

    w3: Web3
    chain_id: int
    market: Any
    compiled: Any
    provider: str
    quotes: int = 0

    def contract(self, label: str, name: str | None = None) -> Any:
        return self.w3.eth.contract(
            address=Web3.to_checksum_address(self.market.address(self.chain_id, label)),
            abi=self.compiled.get(name or label).abi,
        )

    def _send(self, fn: Any, sender: str) -> None:
        receipt = self.w3.eth.wait_for_transaction_receipt(
            fn.transact({"from": sender, "gas": 3_000_000})
        )
        assert receipt["status"] == 1

    def open_loan(self, principal: int, collateral: int) -> int:
        """Borrower signs, operator opens; the borrower then deposits `collateral` WETH."""
        self.quotes += 1
        aggregator = self.contract("CreditAggregator")
        borrower = self.market.borrower
        terms = {
            "quoteHash": keccak(text=f"risk-q{self.quotes}-{self.w3.eth.block_number}"),
            "provider": self.provider,
            "asset": self.market.address(self.chain_id, "USDC"),
            "principal": principal,
            "rateBps": 800,
            "termSeconds": 30 * 86_400,
            "collateralAsset": self.market.address(self.chain_id, "WETH"),
            "collateralAmount": 10**16,
            "nonce": aggregator.functions.nonces(borrower.address).call(),
        }
        deadline = self.w3.eth.get_block("latest")["timestamp"] + 3_600
        signature = sign_acceptance(
            borrower,
            chain_id=self.chain_id,
            aggregator=aggregator.address,
            terms=terms,
            borrower=borrower.address,
            deadline=deadline,
        )
        self._send(
            aggregator.functions.openLoan(
                terms_tuple(terms), borrower.address, deadline, signature
            ),
            self.market.operator.address,
        )
        loan_id = int(aggregator.functions.loanCount().call())
        if collateral:
            self.deposit(loan_id, collateral)
        return loan_id

    def deposit(self, loan_id: int, amount: int) -> None:
        manager = self.contract("CollateralManager")
        weth = self.contract("WETH", "MockERC20")
        borrower = self.market.borrower.address
        self._send(weth.functions.approve(manager.address, amount), borrower)
        self._send(manager.functions.deposit(loan_id, amount), borrower)

    def repay(self, loan_id: int, amount: int) -> None:
        aggregator = self.contract("CreditAggregator")
        self._send(
            aggregator.functions.recordRepayment(loan_id, amount), self.market.operator.address
        )

    def set_eth_price(self, usd: int) -> None:
        feed = self.contract("ETH/USD", "MockPriceFeed")
        self._send(feed.functions.setAnswer(usd * 10**8), self.market.operator.address)

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", [hex(blocks)])

    def rpc(self, method: str, params: list[Any]) -> Any:
        response = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        assert "error" not in response, response
        return response.get("result")

    def watcher(self, devnet: Devnet, *, confirmations: int) -> ChainWatcher:
        addresses = [self.market.address(self.chain_id, label) for label in WATCHED]
        adapter = EvmAdapter(devnet.chain_config(confirmations=confirmations))
        return ChainWatcher(adapter, addresses, default_registry())


@pytest.fixture
def lending(market: Any, chains: list[Devnet], compiled: Any, accounts: list[Any]) -> Lending:  # noqa: F811
    devnet = chains[0]
    return Lending(
        w3=Web3(Web3.HTTPProvider(devnet.rpc_url)),
        chain_id=devnet.chain_id,
        market=market,
        compiled=compiled,
        provider=accounts[6].address,
    )


def create_lender(session: Any, *, name: str, payout_address: str) -> int:
    """A provider whose payout address is the on-chain `provider` of its loans."""
    from backend.kit.columns import utcnow
    from backend.providers.models import Provider, ProviderProfile

    provider = Provider(name=name, kind="traditional", status="active", created_at=utcnow())
    session.add(provider)
    session.flush()
    session.add(
        ProviderProfile(
            provider_id=provider.id, payout_address=payout_address.lower(), updated_at=utcnow()
        )
    )
    session.flush()
    return int(provider.id)
