"""Chain actions of the demo, through the project's own EVM adapter (locally signed,
nonces from the stack's database, reverts decoded): the market, the wallet's funds,
collateral, the price feed, repayment, and mining to finality.

The market is `two_chain_market` (hardhat_fixtures/scenarios.py) deployed on the dev stack's
devnets. Decision: a second demo run *reuses* it when its contracts are still on the chains
(the addresses are CREATE2-deterministic and recorded in `<data_dir>/demo/market.json`), and
deploys it again after the stack restarted with fresh devnets. Reuse keeps a rerun fast;
each run still walks a brand-new wallet, so runs never see each other's loans.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy.engine import Engine
from web3 import Web3
from web3.types import RPCEndpoint

from backend.chains import devnet_account
from chain_adapters.base import ContractCall, Receipt
from chain_adapters.compiler import CompiledProject
from chain_adapters.evm.adapter import EvmAdapter
from chain_adapters.exceptions import ChainError
from chain_adapters.registry import ChainConfig, ChainRegistry

MARKET_FILE = "market.json"
ETH_USD = 2_000
FEED_DECIMALS = 8
UINT256_MAX = 2**256 - 1
WETH_DECIMALS = 18
USDC_DECIMALS = 6


@dataclass(frozen=True)
class MarketBook:
    """The deployed market's addresses per chain id and label (USDC, WETH, PoolA, ...)."""

    contracts: dict[int, dict[str, str]]
    pools: dict[int, str]  # chain id -> pool label

    def address(self, chain_id: int, label: str) -> str:
        return self.contracts[chain_id][label]

    def pool(self, chain_id: int) -> str:
        return self.address(chain_id, self.pools[chain_id])

    def dump(self, path: Path) -> None:
        payload = {"contracts": self.contracts, "pools": self.pools}
        path.write_text(json.dumps(payload, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> MarketBook:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            contracts={int(k): dict(v) for k, v in raw["contracts"].items()},
            pools={int(k): str(v) for k, v in raw["pools"].items()},
        )


def market_present(book: MarketBook, chains: ChainRegistry) -> bool:
    """Whether every chain still has the market's pool and tokens (devnets restart empty)."""
    for chain in chains:
        if chain.chain_id not in book.contracts:
            return False
        w3 = Web3(Web3.HTTPProvider(chain.rpc_urls[0]))
        for label in ("USDC", "WETH", "ETH/USD", book.pools[chain.chain_id]):
            code = w3.eth.get_code(Web3.to_checksum_address(book.address(chain.chain_id, label)))
            if len(code) == 0:
                return False
    return True


def ensure_market(
    state_dir: Path, chains: ChainRegistry, compiled: CompiledProject, engine: Engine
) -> tuple[MarketBook, bool]:
    """The market on the stack's chains: (book, deployed now?)."""
    from hardhat_fixtures.scenarios import deploy_two_chain_market

    path = state_dir / MARKET_FILE
    if path.exists():
        book = MarketBook.load(path)
        if market_present(book, chains):
            return book, False
    accounts = [devnet_account(i) for i in range(6)]
    market = deploy_two_chain_market(
        list(chains), accounts, compiled, nonce_engine=engine, parallel=True
    )
    book = MarketBook(
        contracts={cid: dict(chain.contracts) for cid, chain in market.chains.items()},
        pools={cid: chain.pool.label for cid, chain in market.chains.items() if chain.pool},
    )
    book.dump(path)
    return book, True


def assets_registry(book: MarketBook) -> dict[str, Any]:
    """The credit asset registry (backend/credit/assets.py format) of the market."""
    assets: list[dict[str, Any]] = []
    feeds: dict[str, str] = {}
    for chain_id in sorted(book.contracts):
        assets.append(
            {
                "symbol": "USDC",
                "chain_id": chain_id,
                "address": book.address(chain_id, "USDC"),
                "decimals": USDC_DECIMALS,
                "price_feed": book.address(chain_id, "USDC/USD"),
            }
        )
        assets.append(
            {
                "symbol": "WETH",
                "chain_id": chain_id,
                "address": book.address(chain_id, "WETH"),
                "decimals": WETH_DECIMALS,
                "price_feed": book.address(chain_id, "ETH/USD"),
                "liquidation_threshold": "0.80",
            }
        )
        feeds[str(chain_id)] = book.address(chain_id, "ETH/USD")
    return {"assets": assets, "native_price_feeds": feeds}


class ChainActions:
    """Transactions of the demo's actors on one chain."""

    def __init__(
        self,
        chains: ChainRegistry,
        chain_id: int,
        book: MarketBook,
        compiled: CompiledProject,
        engine: Engine,
    ) -> None:
        self.chain = chains.by_chain_id(chain_id)
        self.chain_id = chain_id
        self.book = book
        self.compiled = compiled
        self.engine = engine
        self.w3 = Web3(Web3.HTTPProvider(self.chain.rpc_urls[0]))
        self.governor = devnet_account(0)
        self.operator = devnet_account(1)

    def _adapter(self, signer: LocalAccount) -> EvmAdapter:
        return EvmAdapter(self.chain, engine=self.engine, signer=signer)

    def send(self, signer: LocalAccount, label: str, abi_name: str, fn: str, *args: Any) -> Receipt:
        call = ContractCall(self.book.address(self.chain_id, label), self.abi(abi_name), fn, args)
        return self._adapter(signer).send(call, wait="mined", label=f"demo:{fn}")

    def call(self, label: str, abi_name: str, fn: str, *args: Any) -> Any:
        call = ContractCall(self.book.address(self.chain_id, label), self.abi(abi_name), fn, args)
        return EvmAdapter(self.chain).call(call)

    def abi(self, name: str) -> Any:
        return self.compiled.get(name).abi

    def rpc(self, method: str, params: list[Any]) -> Any:
        answer = self.w3.provider.make_request(RPCEndpoint(method), params)
        if "error" in answer:
            raise ChainError(f"{method}: {answer['error']}", chain=self.chain.name)
        return answer.get("result")

    def new_wallet(self, weth: int) -> LocalAccount:
        """A brand-new key with gas money (anvil_setBalance) and `weth` minted to it."""
        wallet: LocalAccount = Account.create()
        self.rpc("anvil_setBalance", [wallet.address, hex(10 * 10**18)])
        self.send(self.governor, "WETH", "MockERC20", "mint", wallet.address, weth)
        return wallet

    def deposit(self, wallet: LocalAccount, loan_id: int, amount: int) -> Receipt:
        manager = self.book.address(self.chain_id, "CollateralManager")
        self.send(wallet, "WETH", "MockERC20", "approve", manager, amount)
        return self.send(
            wallet, "CollateralManager", "CollateralManager", "deposit", loan_id, amount
        )

    def set_price(self, feed: str, usd: int) -> Receipt:
        """A new round on one of the market's mock feeds (`ETH/USD`, `USDC/USD`)."""
        answer = usd * 10**FEED_DECIMALS
        return self.send(self.governor, feed, "MockPriceFeed", "setAnswer", answer)

    def set_eth_price(self, usd: int) -> Receipt:
        return self.set_price("ETH/USD", usd)

    def health_factor(self, loan_id: int) -> int:
        """CollateralManager's health factor (WAD) of the loan."""
        return int(self.call("CollateralManager", "CollateralManager", "healthFactor", loan_id))

    def repay_in_full(self, loan_id: int) -> tuple[Receipt, Receipt]:
        """The operator (REPORTER_ROLE) records the full repayment, then closes the loan."""
        repaid = self.send(
            self.operator,
            "CreditAggregator",
            "CreditAggregator",
            "recordRepayment",
            loan_id,
            UINT256_MAX,
        )
        closed = self.send(self.operator, "CreditAggregator", "CreditAggregator", "close", loan_id)
        return repaid, closed

    def loan(self, loan_id: int) -> dict[str, Any]:
        raw = self.call("CreditAggregator", "CreditAggregator", "getLoan", loan_id)
        fn = next(
            item
            for item in self.abi("CreditAggregator")
            if item.get("type") == "function" and item.get("name") == "getLoan"
        )
        names = [c["name"] for c in fn["outputs"][0]["components"]]
        return dict(zip(names, raw, strict=True))


def mine(chain: ChainConfig, blocks: int) -> None:
    """`anvil_mine`: what a devnet's `finalized` tag would otherwise take minutes for."""
    w3 = Web3(Web3.HTTPProvider(chain.rpc_urls[0]))
    answer = w3.provider.make_request(RPCEndpoint("anvil_mine"), [hex(blocks)])
    if "error" in answer:
        raise ChainError(f"anvil_mine: {answer['error']}", chain=chain.name)
