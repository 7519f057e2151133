"""Helpers for the Solidity contract tests: deploy, transact, decode custom errors, sign.

Everything runs against a real Anvil (the session devnets from tests/conftest.py) and the real
compile (chain_adapters.compiler); nothing here mocks a chain.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils import event_abi_to_log_topic, keccak
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError

from chain_adapters.acceptance import sign_acceptance, terms_tuple
from chain_adapters.compiler import CompiledProject

ZERO_ADDRESS = "0x" + "00" * 20
ZERO_BYTES32 = b"\x00" * 32
WAD = 10**18
RAY = 10**27
BPS = 10_000
YEAR = 365 * 24 * 3600
TX_GAS = 8_000_000


def role(name: str) -> bytes:
    return keccak(text=name)


DEFAULT_ADMIN_ROLE = ZERO_BYTES32
PAUSER_ROLE = role("PAUSER_ROLE")
ANCHORER_ROLE = role("ANCHORER_ROLE")
ORIGINATOR_ROLE = role("ORIGINATOR_ROLE")
REPORTER_ROLE = role("REPORTER_ROLE")
SCORER_ROLE = role("SCORER_ROLE")


# --- custom errors ---------------------------------------------------------------------------


def _canonical_type(param: dict[str, Any]) -> str:
    kind = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


@dataclass(frozen=True)
class ErrorAbi:
    name: str
    types: tuple[str, ...]

    @property
    def selector(self) -> bytes:
        return keccak(text=f"{self.name}({','.join(self.types)})")[:4]


class ErrorRegistry:
    """Every custom error of every compiled contract, by 4-byte selector."""

    def __init__(self, compiled: CompiledProject) -> None:
        self.by_selector: dict[bytes, ErrorAbi] = {}
        for artifact in compiled.artifacts.values():
            for entry in artifact.abi:
                if entry.get("type") == "error":
                    err = ErrorAbi(
                        entry["name"], tuple(_canonical_type(i) for i in entry["inputs"])
                    )
                    self.by_selector[err.selector] = err

    def decode(self, data: bytes) -> tuple[str, tuple[Any, ...]]:
        selector, payload = data[:4], data[4:]
        if selector not in self.by_selector:
            raise AssertionError(f"revert data with unknown selector 0x{selector.hex()}")
        err = self.by_selector[selector]
        return err.name, tuple(abi_decode(list(err.types), payload))


def _revert_data(exc: Exception) -> bytes:
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if not isinstance(data, str) or not data.startswith("0x"):
        raise AssertionError(f"revert without custom-error data: {exc!r}")
    return bytes.fromhex(data[2:])


# --- chain -----------------------------------------------------------------------------------


@dataclass(repr=False)
class Chain:
    """One devnet seen through web3, with the project's compiled artifacts."""

    w3: Web3
    compiled: CompiledProject
    accounts: Sequence[LocalAccount]
    errors: ErrorRegistry = field(init=False)

    def __post_init__(self) -> None:
        self.errors = ErrorRegistry(self.compiled)

    def __repr__(self) -> str:
        return f"Chain({self.w3.provider})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis' pretty-printer
        printer.text(repr(self))

    @property
    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    # contracts

    def deploy(self, name: str, *args: Any, sender: LocalAccount | None = None) -> Contract:
        artifact = self.compiled.get(name)
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        sender = sender or self.accounts[0]
        receipt = self._send(factory.constructor(*args), sender)
        return self.at(name, receipt["contractAddress"])

    def at(self, name: str, address: str) -> Contract:
        return self.w3.eth.contract(address=address, abi=self.compiled.get(name).abi)

    def _send(self, fn: Any, sender: LocalAccount, value: int = 0) -> Any:
        # An explicit gas limit skips eth_estimateGas, which runs in the latest block's context:
        # after evm_setNextBlockTimestamp that is the wrong time for time-dependent calls.
        tx_hash = fn.transact({"from": sender.address, "value": value, "gas": TX_GAS})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 1, f"transaction failed: {receipt}"
        return receipt

    def tx(self, fn: Any, sender: LocalAccount, *, value: int = 0) -> Any:
        """Send a contract call as `sender` (an Anvil unlocked account); return the receipt."""
        return self._send(fn, sender, value)

    def revert_of(self, fn: Any, sender: LocalAccount) -> tuple[str, tuple[Any, ...]]:
        """The decoded custom error `fn` reverts with when sent by `sender`."""
        try:
            tx_hash = fn.transact({"from": sender.address})
        except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
            return self.errors.decode(_revert_data(exc))
        status = self.w3.eth.wait_for_transaction_receipt(tx_hash)["status"]
        raise AssertionError(
            f"{fn.fn_name} did not revert in eth_estimateGas (mined with status {status}); "
            "time-dependent reverts need `mine_at` first, as estimates run in the latest block"
        )

    def call_revert_of(self, fn: Any, **kwargs: Any) -> tuple[str, tuple[Any, ...]]:
        """The decoded custom error a view call reverts with."""
        try:
            fn.call(**kwargs)
        except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
            return self.errors.decode(_revert_data(exc))
        raise AssertionError(f"{fn.fn_name} did not revert")

    def expect_revert(self, fn: Any, sender: LocalAccount, error: str, *args: Any) -> None:
        name, decoded = self.revert_of(fn, sender)
        assert name == error, f"expected {error}{args}, got {name}{decoded}"
        if args:
            assert decoded == tuple(_normalise(a) for a in args), (
                f"{error}: expected args {args}, got {decoded}"
            )

    def events(self, contract: Contract, event: str, receipt: Any) -> list[Any]:
        """Decoded `event`s emitted by `contract` in `receipt` (other emitters' logs skipped)."""
        event_abi = next(e for e in contract.abi if e.get("type") == "event" and e["name"] == event)
        topic = event_abi_to_log_topic(event_abi)  # type: ignore[arg-type]
        matching = [
            log
            for log in receipt["logs"]
            if log["address"] == contract.address
            and log["topics"]
            and bytes(log["topics"][0]) == topic
        ]
        return [contract.events[event]().process_log(log) for log in matching]

    # time and state

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        response = self.w3.provider.make_request(method, params or [])  # type: ignore[arg-type]
        if "error" in response:
            raise RuntimeError(f"{method}: {response['error']}")
        return response["result"]

    def latest(self) -> Any:
        return self.w3.eth.get_block("latest")

    def now(self) -> int:
        return int(self.latest()["timestamp"])

    def set_next_timestamp(self, timestamp: int) -> None:
        self.rpc("evm_setNextBlockTimestamp", [timestamp])

    def mine_at(self, timestamp: int) -> int:
        """Mine one empty block at `timestamp`; return its number (for pinned view calls)."""
        self.rpc("evm_mine", [timestamp])
        block = self.latest()
        assert block["timestamp"] == timestamp
        return int(block["number"])

    def increase_time(self, seconds: int) -> None:
        self.rpc("evm_increaseTime", [seconds])
        self.rpc("evm_mine")

    @contextlib.contextmanager
    def isolated(self) -> Iterator[None]:
        """evm_snapshot / evm_revert around a block (one hypothesis example, say)."""
        snapshot_id = self.rpc("evm_snapshot")
        try:
            yield
        finally:
            assert self.rpc("evm_revert", [snapshot_id]), "evm_revert refused"


def _normalise(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return value.lower()
    return value


def lower_addresses(values: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(v.lower() if isinstance(v, str) and v.startswith("0x") else v for v in values)


# --- the deployed system -------------------------------------------------------------------


@dataclass(repr=False)
class System:
    chain: Chain
    admin: LocalAccount
    pauser: LocalAccount
    relayer: LocalAccount  # ORIGINATOR_ROLE + ANCHORER_ROLE
    reporter: LocalAccount  # REPORTER_ROLE + SCORER_ROLE
    borrower: LocalAccount
    provider: LocalAccount
    liquidator: LocalAccount
    outsider: LocalAccount
    wallet_owner: LocalAccount
    anchor: Contract
    aggregator: Contract
    collateral: Contract
    oracle: Contract
    usdc: Contract
    weth: Contract
    wbtc: Contract
    feeds: dict[str, Contract]
    pool_a: Contract
    pool_b: Contract
    wallet: Contract
    quote_counter: list[int] = field(default_factory=lambda: [0])

    def __repr__(self) -> str:
        return f"System(aggregator={self.aggregator.address})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis' pretty-printer
        printer.text(repr(self))

    def next_quote_hash(self) -> bytes:
        self.quote_counter[0] += 1
        return keccak(text=f"quote-{self.quote_counter[0]}")

    def terms(self, **overrides: Any) -> dict[str, Any]:
        base = {
            "quoteHash": self.next_quote_hash(),
            "provider": self.provider.address,
            "asset": self.usdc.address,
            "principal": 10_000 * 10**6,
            "rateBps": 1_200,
            "termSeconds": 90 * 24 * 3600,
            "collateralAsset": self.weth.address,
            "collateralAmount": 5 * 10**18,
            "nonce": 0,
        }
        base.update(overrides)
        return base

    def open_loan(
        self,
        *,
        borrower: LocalAccount | None = None,
        signer: LocalAccount | None = None,
        borrower_address: str | None = None,
        deadline: int | None = None,
        **overrides: Any,
    ) -> tuple[int, Any, dict[str, Any]]:
        """Sign an acceptance and open it through the relayer; returns (loanId, receipt, terms)."""
        borrower = borrower or self.borrower
        address = borrower_address or borrower.address
        if "nonce" not in overrides:
            overrides["nonce"] = self.aggregator.functions.nonces(address).call()
        terms = self.terms(**overrides)
        deadline = deadline if deadline is not None else self.chain.now() + 3600
        signature = sign_acceptance(
            signer or borrower,
            chain_id=self.chain.chain_id,
            aggregator=self.aggregator.address,
            terms=terms,
            borrower=address,
            deadline=deadline,
        )
        fn = self.aggregator.functions.openLoan(terms_tuple(terms), address, deadline, signature)
        receipt = self.chain.tx(fn, self.relayer)
        (event,) = self.chain.events(self.aggregator, "LoanOpened", receipt)
        return int(event["args"]["loanId"]), receipt, terms

    def deposit(self, loan_id: int, amount: int, token: Contract | None = None) -> Any:
        token = token or self.weth
        self.chain.tx(token.functions.mint(self.borrower.address, amount), self.borrower)
        self.chain.tx(token.functions.approve(self.collateral.address, amount), self.borrower)
        return self.chain.tx(self.collateral.functions.deposit(loan_id, amount), self.borrower)


def deploy_system(chain: Chain) -> System:
    """Deploy every contract and mock with an EOA admin, and grant the operating roles."""
    a = chain.accounts
    admin, pauser, relayer, reporter = a[0], a[1], a[2], a[3]
    borrower, provider, liquidator, outsider, wallet_owner = a[4], a[5], a[6], a[7], a[8]

    usdc = chain.deploy("MockERC20", "USD Coin", "USDC", 6)
    weth = chain.deploy("MockERC20", "Wrapped Ether", "WETH", 18)
    wbtc = chain.deploy("MockERC20", "Wrapped Bitcoin", "WBTC", 8)
    feeds = {
        "USDC": chain.deploy("MockPriceFeed", "USDC / USD", 1 * 10**8),
        "WETH": chain.deploy("MockPriceFeed", "ETH / USD", 3_000 * 10**8),
        "WBTC": chain.deploy("MockPriceFeed", "BTC / USD", 60_000 * 10**8),
    }
    anchor = chain.deploy("ReceiptAnchor", admin.address)
    aggregator = chain.deploy("CreditAggregator", admin.address)
    collateral = chain.deploy("CollateralManager", admin.address, aggregator.address)
    oracle = chain.deploy("CreditScoringOracle", admin.address)
    pool_a = chain.deploy(
        "MockLendingPool", usdc.address, 0, 4 * RAY // 100, 60 * RAY // 100, 80 * RAY // 100
    )
    pool_b = chain.deploy(
        "MockLendingPool",
        usdc.address,
        1 * RAY // 100,
        7 * RAY // 100,
        300 * RAY // 100,
        45 * RAY // 100,
    )
    wallet = chain.deploy("MockERC1271Wallet", wallet_owner.address)

    for contract in (anchor, aggregator, collateral, oracle):
        chain.tx(contract.functions.grantRole(PAUSER_ROLE, pauser.address), admin)
    chain.tx(anchor.functions.grantRole(ANCHORER_ROLE, relayer.address), admin)
    chain.tx(aggregator.functions.grantRole(ORIGINATOR_ROLE, relayer.address), admin)
    chain.tx(aggregator.functions.grantRole(REPORTER_ROLE, reporter.address), admin)
    chain.tx(aggregator.functions.grantRole(REPORTER_ROLE, collateral.address), admin)
    chain.tx(oracle.functions.grantRole(SCORER_ROLE, reporter.address), admin)

    chain.tx(
        collateral.functions.setAssetConfig(weth.address, feeds["WETH"].address, 8_000, 500, 3_600),
        admin,
    )
    chain.tx(
        collateral.functions.setAssetConfig(
            wbtc.address, feeds["WBTC"].address, 7_500, 1_000, 3_600
        ),
        admin,
    )
    chain.tx(
        collateral.functions.setAssetConfig(usdc.address, feeds["USDC"].address, 0, 0, 86_400),
        admin,
    )

    return System(
        chain=chain,
        admin=admin,
        pauser=pauser,
        relayer=relayer,
        reporter=reporter,
        borrower=borrower,
        provider=provider,
        liquidator=liquidator,
        outsider=outsider,
        wallet_owner=wallet_owner,
        anchor=anchor,
        aggregator=aggregator,
        collateral=collateral,
        oracle=oracle,
        usdc=usdc,
        weth=weth,
        wbtc=wbtc,
        feeds=feeds,
        pool_a=pool_a,
        pool_b=pool_b,
        wallet=wallet,
    )


def refresh_feeds(system: System, at: int | None = None) -> None:
    """Re-publish every feed's current answer with updatedAt = `at` (default: now)."""
    chain = system.chain
    for feed in system.feeds.values():
        answer = feed.functions.latestRoundData().call()[1]
        if at is None:
            chain.tx(feed.functions.setAnswer(answer), system.admin)
        else:
            chain.tx(feed.functions.setAnswerAt(answer, at), system.admin)


Scenario = Callable[[Any], System]
