"""Gas of every state-changing function of the credagg contracts, measured on a real Anvil.

    .venv/bin/python scripts/bench/gas.py

Deploys the `two_chain_market` scenario on one fresh devnet (timelock-administered suite,
tokens, feeds, a pool), then sends each function once (anchor() 64 times) and prints a markdown
table of gasUsed from the receipts. Admin functions are measured as the timelock's executeBatch
that carries them (what governance actually pays). The anchor() line compares its steady state
with the 80,000-gas target of issue 3 and with the first anchor (which also initialises storage).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import keccak
from sqlalchemy import create_engine
from web3 import Web3

from chain_adapters.acceptance import sign_acceptance, terms_tuple
from chain_adapters.compiler import compile_project
from chain_adapters.devnet import DEVNET_MNEMONIC, DevnetSpec, running_devnets
from chain_adapters.evm.store import chain_metadata
from chain_adapters.suite import (
    COLLATERAL_MANAGER,
    CREDIT_AGGREGATOR,
    AdminCall,
    run_admin_calls,
)
from hardhat_fixtures.scenarios import devnet_adapter, two_chain_market

ANCHOR_TARGET = 80_000
STEADY_ANCHORS = 64
Account.enable_unaudited_hdwallet_features()


@dataclass
class Env:
    devnets: list[Any]
    accounts: list[Any]
    compiled: Any


class Meter:
    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        self.rows: list[tuple[str, int, str]] = []

    def send(self, label: str, fn: Any, sender: str, note: str = "") -> int:
        tx = fn.transact({"from": sender, "gas": 3_000_000})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx)
        assert receipt["status"] == 1, f"{label} reverted"
        gas = int(receipt["gasUsed"])
        if label:
            self.rows.append((label, gas, note))
        return gas

    def record(self, label: str, gas: int, note: str = "") -> None:
        self.rows.append((label, gas, note))


def main() -> None:
    compiled = compile_project()
    accounts = [
        Account.from_mnemonic(DEVNET_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        for i in range(10)
    ]
    with running_devnets([DevnetSpec("bench", 31337)]) as devnets:
        devnet = devnets[0]
        market = two_chain_market(Env(devnets, accounts, compiled))
        addr = market.chains[devnet.chain_id].contracts
        w3 = Web3(Web3.HTTPProvider(devnet.rpc_url))
        meter = Meter(w3)

        def contract(label: str, name: str | None = None) -> Any:
            return w3.eth.contract(address=addr[label], abi=compiled.get(name or label).abi)

        anchor = contract("ReceiptAnchor")
        aggregator = contract("CreditAggregator")
        collateral = contract("CollateralManager")
        oracle = contract("CreditScoringOracle")
        usdc, weth = contract("USDC", "MockERC20"), contract("WETH", "MockERC20")
        eth_feed = contract("ETH/USD", "MockPriceFeed")
        pool = contract("PoolA", "MockLendingPool")
        operator, guardian = market.operator.address, market.guardian.address
        borrower, liquidator = market.borrower, market.liquidator.address
        provider = accounts[6].address

        # --- ReceiptAnchor -----------------------------------------------------------------
        first = meter.send("", anchor.functions.anchor(1, keccak(text="root-1")), operator)
        steady = [
            meter.send("", anchor.functions.anchor(size, keccak(text=f"root-{size}")), operator)
            for size in range(2, 2 + STEADY_ANCHORS)
        ]
        meter.record("ReceiptAnchor.anchor (first)", first, "initialises the latest-size slot")
        meter.record(
            "ReceiptAnchor.anchor (steady state)",
            round(statistics.mean(steady)),
            f"mean of {STEADY_ANCHORS}, max {max(steady):,}; target <= {ANCHOR_TARGET:,}",
        )

        # --- CreditScoringOracle -----------------------------------------------------------
        publish = oracle.functions.publish
        meter.send(
            "CreditScoringOracle.publish (first)",
            publish(borrower.address, 700, keccak(text="m1"), keccak(text="r1")),
            operator,
        )
        meter.send(
            "CreditScoringOracle.publish (update)",
            publish(borrower.address, 720, keccak(text="m1"), keccak(text="r2")),
            operator,
        )

        # --- CreditAggregator + CollateralManager -------------------------------------------
        def open_loan(
            label: str, quote: str, principal: int, note: str = "", wallet: str | None = None
        ) -> int:
            terms = {
                "quoteHash": keccak(text=quote),
                "provider": provider,
                "asset": usdc.address,
                "principal": principal,
                "rateBps": 800,
                "termSeconds": 30 * 86_400,
                "collateralAsset": weth.address,
                "collateralAmount": 10**18,
                "nonce": aggregator.functions.nonces(wallet or borrower.address).call(),
            }
            deadline = w3.eth.get_block("latest")["timestamp"] + 3_600
            signature = sign_acceptance(
                borrower,
                chain_id=devnet.chain_id,
                aggregator=aggregator.address,
                terms=terms,
                borrower=wallet or borrower.address,
                deadline=deadline,
            )
            before = aggregator.functions.loanCount().call()
            meter.send(
                label,
                aggregator.functions.openLoan(
                    terms_tuple(terms), wallet or borrower.address, deadline, signature
                ),
                operator,
                note,
            )
            return int(before) + 1

        loan = open_loan(
            "CreditAggregator.openLoan",
            "q1",
            1_000 * 10**6,
            "EOA (ECDSA); first loan, initialises counters",
        )
        factory = w3.eth.contract(
            abi=compiled.get("MockERC1271Wallet").abi,
            bytecode=compiled.get("MockERC1271Wallet").bytecode,
        )
        created = w3.eth.wait_for_transaction_receipt(
            factory.constructor(borrower.address).transact({"from": borrower.address})
        )
        open_loan(
            "CreditAggregator.openLoan (EIP-1271 wallet)",
            "q0",
            1_000 * 10**6,
            "smart-contract wallet, isValidSignature",
            wallet=created["contractAddress"],
        )
        meter.send("", weth.functions.approve(collateral.address, 10 * 10**18), borrower.address)
        meter.send(
            "CollateralManager.deposit",
            collateral.functions.deposit(loan, 2 * 10**18),
            borrower.address,
            "first deposit of the loan",
        )
        meter.send(
            "CollateralManager.withdraw",
            collateral.functions.withdraw(loan, 5 * 10**17),
            borrower.address,
            "health factor re-checked",
        )
        meter.send(
            "CreditAggregator.recordRepayment (partial)",
            aggregator.functions.recordRepayment(loan, 100 * 10**6),
            operator,
        )
        meter.send(
            "CreditAggregator.recordRepayment (in full)",
            aggregator.functions.recordRepayment(loan, 2**256 - 1),
            operator,
        )
        meter.send("CreditAggregator.close", aggregator.functions.close(loan), operator)

        risky = open_loan("", "q2", 3_000 * 10**6)
        meter.send("", collateral.functions.deposit(risky, 2 * 10**18), borrower.address)
        meter.send(
            "MockPriceFeed.setAnswer",
            eth_feed.functions.setAnswer(1_500 * 10**8),
            operator,
            "fixture: price drop",
        )
        meter.send("", usdc.functions.approve(collateral.address, 10**30), liquidator)
        meter.send(
            "CollateralManager.liquidate",
            collateral.functions.liquidate(risky, 500 * 10**6),
            liquidator,
            "health factor < 1, 5% bonus",
        )

        late = open_loan("", "q3", 100 * 10**6)
        w3.provider.make_request("evm_increaseTime", [31 * 86_400])
        w3.provider.make_request("evm_mine", [])
        meter.send("CreditAggregator.markDefault", aggregator.functions.markDefault(late), operator)

        # --- pause, and admin actions through the timelock ---------------------------------
        meter.send("AdminPausable.pause", anchor.functions.pause(), guardian, "guardian, at once")
        nonce_db = Path(tempfile.mkdtemp()) / "nonces.db"
        engine = create_engine(f"sqlite:///{nonce_db}")
        chain_metadata.create_all(engine)
        governor = devnet_adapter(devnet, market.governor, engine)
        contracts_by_label = {label: _Deployed(address) for label, address in addr.items()}

        def via_timelock(label: str, calls: list[AdminCall], note: str) -> None:
            before = w3.eth.block_number
            run_admin_calls(
                governor, compiled, contracts_by_label, calls, label=label, fast_forward=True
            )
            receipts = [
                w3.eth.get_block(n, full_transactions=True)
                for n in range(before + 1, w3.eth.block_number + 1)
            ]
            gas = [
                int(w3.eth.get_transaction_receipt(tx["hash"])["gasUsed"])
                for block in receipts
                for tx in block["transactions"]
            ]
            meter.record(f"{label} via timelock (schedule + execute)", sum(gas), note)

        via_timelock(
            "ReceiptAnchor.unpause",
            [AdminCall("ReceiptAnchor", "unpause")],
            "admin only; waits the timelock delay",
        )
        via_timelock(
            "CollateralManager.setAssetConfig",
            [
                AdminCall(
                    COLLATERAL_MANAGER,
                    "setAssetConfig",
                    (weth.address, addr["ETH/USD"], 7_500, 500, 3_600),
                )
            ],
            "admin only",
        )
        via_timelock(
            "CreditAggregator.grantRole",
            [
                AdminCall(
                    CREDIT_AGGREGATOR,
                    "grantRole",
                    (keccak(text="REPORTER_ROLE"), accounts[7].address),
                )
            ],
            "admin only",
        )
        engine.dispose()
        shutil.rmtree(nonce_db.parent)

        # --- the mock pool (fixture, for reference) -----------------------------------------
        meter.send("", usdc.functions.approve(pool.address, 10**30), liquidator)
        meter.send(
            "MockLendingPool.supply", pool.functions.supply(10_000 * 10**6), liquidator, "fixture"
        )
        meter.send(
            "MockLendingPool.borrow", pool.functions.borrow(1_000 * 10**6), liquidator, "fixture"
        )
        meter.send(
            "MockLendingPool.repay", pool.functions.repay(1_000 * 10**6), liquidator, "fixture"
        )
        meter.send(
            "MockLendingPool.withdraw",
            pool.functions.withdraw(1_000 * 10**6),
            liquidator,
            "fixture",
        )

    print("| function | gas | note |")
    print("|---|---:|---|")
    for label, gas, note in meter.rows:
        print(f"| {label} | {gas:,} | {note} |")
    mean_steady = statistics.mean(steady)
    print()
    print(
        f"anchor() steady state: {mean_steady:,.0f} gas = {mean_steady / ANCHOR_TARGET:.3f}x "
        f"the {ANCHOR_TARGET:,} target; first anchor {first:,} "
        f"({first / mean_steady:.2f}x steady state)"
    )


@dataclass(frozen=True)
class _Deployed:
    address: str


if __name__ == "__main__":
    main()
