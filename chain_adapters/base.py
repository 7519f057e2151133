"""The chain adapter contract: what the backend may ask of any chain family.

Small on purpose. The backend reads state (`call`, `block`, `get_logs`), writes state (`send`,
`deploy`) and reasons about finality (`finalized_block`, `is_final`); everything specific to a
family (fees, nonces, RPC quirks) stays behind this interface. Values crossing it are plain
dataclasses (hex strings, ints, bytes), never a client library's objects, so the watcher and
the receipts code do not depend on web3.py.

Finality: with `finality = "finalized"` the node's `finalized` tag is authoritative; with
`finality = "confirmations"` block n is final once `head - n >= confirmations` (0 means every
mined block counts as final, which is what an automining devnet wants).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from chain_adapters.exceptions import ChainError
from chain_adapters.registry import ChainConfig

BlockTag = Literal["latest", "pending", "safe", "finalized", "earliest"]
BlockId = int | BlockTag
WaitFor = Literal["mined", "final"]
ABI = Sequence[Mapping[str, Any]]


class LogQueryTooLarge(ChainError):
    """`eth_getLogs` refused a block range: too many results or too big a response.

    Providers cap a query differently (Infura and Alchemy: 10,000 results; others: a response
    size or a block span), so callers shrink the range and try again (see the watcher's
    adaptive ranges). `from_block`/`to_block` name the refused range.
    """

    def __init__(self, message: str, *, chain: str, from_block: int, to_block: int) -> None:
        self.from_block = from_block
        self.to_block = to_block
        super().__init__(
            f"eth_getLogs over blocks {from_block}..{to_block} refused: {message}; "
            "query a smaller range",
            chain=chain,
        )


@dataclass(frozen=True, slots=True)
class Block:
    number: int
    hash: str
    parent_hash: str
    timestamp: int
    base_fee_per_gas: int | None = None


@dataclass(frozen=True, slots=True)
class Log:
    """One event log; (block_hash, log_index) identifies it across reorgs."""

    address: str
    topics: tuple[str, ...]
    data: bytes
    block_number: int
    block_hash: str
    transaction_hash: str
    log_index: int
    removed: bool = False


@dataclass(frozen=True, slots=True)
class Receipt:
    chain_id: int
    transaction_hash: str
    block_number: int
    block_hash: str
    status: bool
    gas_used: int
    effective_gas_price: int
    sender: str
    nonce: int
    contract_address: str | None = None
    logs: tuple[Log, ...] = ()


@dataclass(frozen=True, slots=True)
class ContractCall:
    """A function of a deployed contract, by name (or full signature when overloaded)."""

    address: str
    abi: ABI
    function: str
    args: tuple[Any, ...] = ()
    value: int = 0
    gas: int | None = None  # None = estimate (a revert then fails before any nonce is used)


@dataclass(frozen=True, slots=True)
class RawTx:
    """A transaction given as bytes; `to=None` creates a contract from `data`."""

    to: str | None
    data: bytes = b""
    value: int = 0
    gas: int | None = None
    abi: ABI = field(default=())  # optional: lets a revert be decoded into a custom error


@dataclass(frozen=True, slots=True)
class Deployment:
    address: str
    receipt: Receipt


class ChainAdapter(ABC):
    """One chain, one family. Instances hold their own clients; nothing is global."""

    family: ClassVar[str]

    def __init__(self, chain: ChainConfig) -> None:
        self._chain = chain

    @property
    def chain(self) -> ChainConfig:
        return self._chain

    @property
    def chain_id(self) -> int:
        return self._chain.chain_id

    # -- lifecycle ---------------------------------------------------------------------------

    @abstractmethod
    def connect(self) -> None:
        """Check every reachable RPC URL answers with the configured chain id.

        Raises ChainIdMismatch (wrong network) or RPCUnavailable (no URL answers).
        """

    def close(self) -> None:  # noqa: B027 - optional hook, deliberately not abstract
        """Release connections. Default: nothing to release."""

    # -- reads -------------------------------------------------------------------------------

    @abstractmethod
    def call(self, request: ContractCall | RawTx, *, block: BlockId = "latest") -> Any:
        """Read-only execution: decoded outputs for a ContractCall, raw bytes for a RawTx.

        A revert raises ContractRevert (no tx hash) with the decoded error.
        """

    @abstractmethod
    def block(self, block: BlockId) -> Block: ...

    @abstractmethod
    def get_logs(
        self,
        *,
        from_block: int,
        to_block: BlockId,
        address: str | Sequence[str] | None = None,
        topics: Sequence[str | Sequence[str] | None] | None = None,
    ) -> list[Log]: ...

    def fetch_logs(
        self,
        *,
        from_block: int,
        to_block: int,
        address: str | Sequence[str] | None = None,
    ) -> list[Log]:
        """`get_logs` over a closed numeric range; a provider's size limit -> LogQueryTooLarge.

        The default cannot tell a size limit from other errors; families override it.
        """
        return self.get_logs(from_block=from_block, to_block=to_block, address=address)

    @abstractmethod
    def get_code(self, address: str, *, block: BlockId = "latest") -> bytes: ...

    @abstractmethod
    def get_balance(self, address: str, *, block: BlockId = "latest") -> int: ...

    def head(self) -> int:
        return self.block("latest").number

    def finalized_block(self) -> int:
        """Highest block that can no longer be reorganised away (see module docstring)."""
        if self.chain.finality == "finalized":
            return self.block("finalized").number
        return max(self.head() - self.chain.confirmations, 0)

    def is_final(self, block_number: int) -> bool:
        return block_number <= self.finalized_block()

    # -- writes ------------------------------------------------------------------------------

    @abstractmethod
    def send(
        self,
        request: ContractCall | RawTx,
        *,
        wait: WaitFor = "final",
        label: str | None = None,
    ) -> Receipt:
        """Sign, persist, broadcast and wait. Returns only a successful receipt.

        Raises ContractRevert (with the tx hash if it was mined), TransactionTimeout, or
        RPCUnavailable (the transaction stays persisted and is resumed later).
        """

    @abstractmethod
    def deploy(
        self,
        bytecode: bytes | str,
        *,
        abi: ABI = (),
        args: Sequence[Any] = (),
        wait: WaitFor = "final",
        label: str | None = None,
    ) -> Deployment:
        """Plain (non-deterministic) contract creation; see chain_adapters.deploy for CREATE2."""
