"""What goes over the wire for a transaction, and how the node's answers are read.

Nodes answer a broadcast with free-text errors whose wording differs between clients (geth,
Nethermind, Erigon, reth, Anvil); the lifecycle only needs to know which of five things happened,
so the wording is classified here, once. The same goes for getting revert bytes of a mined
transaction and for reading back the content of a signed transaction we recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import rlp
from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.types import RPCEndpoint

from chain_adapters.evm import fees as fee_math
from chain_adapters.evm.errors import revert_data_from
from chain_adapters.evm.store import TxRecord


@dataclass(frozen=True, slots=True)
class UnsignedTx:
    """Everything about a transaction except nonce and fees."""

    to: str | None
    data: bytes
    value: int
    gas: int
    label: str | None = None


class Broadcast(Enum):
    ACCEPTED = "accepted"
    KNOWN = "known"  # the node already has it: as good as accepted
    NONCE_TOO_LOW = "nonce_too_low"  # some transaction with this nonce is mined
    UNDERPRICED = "underpriced"  # the pool holds this nonce with fees we do not beat by enough
    REJECTED = "rejected"  # anything else: insufficient funds, intrinsic gas, fee cap...


@dataclass(frozen=True, slots=True)
class BroadcastResult:
    outcome: Broadcast
    message: str = ""

    @property
    def in_pool(self) -> bool:
        return self.outcome in (Broadcast.ACCEPTED, Broadcast.KNOWN)


_KNOWN_MARKERS = ("already known", "already imported", "known transaction", "already exists")
_NONCE_LOW_MARKERS = ("nonce too low", "nonce has already been used", "oldnonce", "already used")
_UNDERPRICED_MARKERS = ("underpriced", "fee too low", "replacement fee")


def broadcast(w3: Web3, raw_tx: bytes) -> BroadcastResult:
    """eth_sendRawTransaction; node refusals are classified, transport errors propagate."""
    try:
        w3.eth.send_raw_transaction(raw_tx)
    except Web3RPCError as exc:
        message = _rpc_message(exc)
        lowered = message.lower()
        if any(marker in lowered for marker in _KNOWN_MARKERS):
            return BroadcastResult(Broadcast.KNOWN, message)
        if any(marker in lowered for marker in _NONCE_LOW_MARKERS):
            return BroadcastResult(Broadcast.NONCE_TOO_LOW, message)
        if any(marker in lowered for marker in _UNDERPRICED_MARKERS):
            return BroadcastResult(Broadcast.UNDERPRICED, message)
        return BroadcastResult(Broadcast.REJECTED, message)
    return BroadcastResult(Broadcast.ACCEPTED)


def revert_data(w3: Web3, tx_hash: str, block_number: int) -> bytes | None:
    """The revert bytes of a mined, failed transaction.

    debug_traceTransaction (callTracer) is exact; nodes without the debug namespace get a replay
    by eth_call at the receipt's block, which is right unless the failure depended on a
    transaction later in the same block.
    """
    try:
        trace = w3.manager.request_blocking(
            RPCEndpoint("debug_traceTransaction"), [tx_hash, {"tracer": "callTracer"}]
        )
        output = trace.get("output") if hasattr(trace, "get") else None
        if isinstance(output, str) and output.startswith("0x"):
            return bytes.fromhex(output[2:])
    except (Web3RPCError, ValueError):
        pass
    tx = w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
    params: dict[str, Any] = {
        "from": tx["from"],
        "data": tx["input"],
        "value": tx["value"],
        "gas": tx["gas"],
    }
    if tx.get("to"):
        params["to"] = tx["to"]
    try:
        w3.eth.call(params, block_number)  # type: ignore[arg-type]
    except ContractLogicError as exc:
        return revert_data_from(exc)
    except Web3RPCError:
        return None
    return None


def fees_of(record: TxRecord) -> fee_math.Fees:
    if record.max_fee_per_gas is not None:
        return fee_math.Eip1559Fees(
            max_fee_per_gas=record.max_fee_per_gas,
            max_priority_fee_per_gas=record.max_priority_fee_per_gas or 0,
        )
    return fee_math.LegacyFees(gas_price=record.gas_price or 0)


def unsigned_of(record: TxRecord) -> UnsignedTx:
    """The unsigned content of a recorded transaction (to re-sign it with other fees).

    Decoded from the signed bytes rather than duplicated in columns: the raw transaction is the
    single source of truth for what was sent.
    """
    raw = bytes(record.raw_tx)
    if raw and raw[0] <= 0x7F:  # EIP-2718 typed transaction
        fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
        to, data, value, gas = fields["to"], fields["data"], fields["value"], fields["gas"]
    else:  # legacy: rlp([nonce, gasPrice, gas, to, value, data, v, r, s])
        items = rlp.decode(raw)
        to, value, data = items[3], int.from_bytes(items[4], "big"), items[5]
        gas = int.from_bytes(items[2], "big")
    return UnsignedTx(
        to=Web3.to_checksum_address(to) if to else None,
        data=bytes(data),
        value=int(value),
        gas=int(gas),
        label=record.label,
    )


def _rpc_message(exc: Web3RPCError) -> str:
    response = exc.rpc_response or {}
    error = response.get("error") if isinstance(response, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return str(exc.message)
