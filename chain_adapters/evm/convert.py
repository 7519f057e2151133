"""web3 result objects -> the family-neutral dataclasses of chain_adapters.base.

Callers of the adapter never see AttributeDicts or HexBytes: hashes are 0x-hex strings,
addresses are checksummed, data is bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from web3 import Web3

from chain_adapters.base import Block, Log, Receipt


def hex0x(value: Any) -> str:
    """0x-prefixed lowercase hex of bytes/HexBytes/str."""
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return Web3.to_hex(value)


def as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    raise TypeError(f"cannot read {type(value).__name__} as bytes")


def to_block(data: Mapping[str, Any]) -> Block:
    return Block(
        number=int(data["number"]),
        hash=hex0x(data["hash"]),
        parent_hash=hex0x(data["parentHash"]),
        timestamp=int(data["timestamp"]),
        base_fee_per_gas=int(data["baseFeePerGas"])
        if data.get("baseFeePerGas") is not None
        else None,
    )


def to_log(data: Mapping[str, Any]) -> Log:
    return Log(
        address=Web3.to_checksum_address(data["address"]),
        topics=tuple(hex0x(t) for t in data["topics"]),
        data=as_bytes(data["data"]),
        block_number=int(data["blockNumber"]),
        block_hash=hex0x(data["blockHash"]),
        transaction_hash=hex0x(data["transactionHash"]),
        log_index=int(data["logIndex"]),
        removed=bool(data.get("removed", False)),
    )


def to_receipt(data: Mapping[str, Any], *, chain_id: int, nonce: int) -> Receipt:
    contract = data.get("contractAddress")
    return Receipt(
        chain_id=chain_id,
        transaction_hash=hex0x(data["transactionHash"]),
        block_number=int(data["blockNumber"]),
        block_hash=hex0x(data["blockHash"]),
        status=int(data["status"]) == 1,
        gas_used=int(data["gasUsed"]),
        effective_gas_price=int(data.get("effectiveGasPrice", 0) or 0),
        sender=Web3.to_checksum_address(data["from"]),
        nonce=nonce,
        contract_address=Web3.to_checksum_address(contract) if contract else None,
        logs=tuple(to_log(entry) for entry in data.get("logs", [])),
    )
