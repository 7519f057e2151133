"""EVM-specific errors and revert-data decoding.

A revert is only useful to an operator when it says *which* error the contract raised and with
which arguments: `InsufficientCollateral(ltvBps=8200, maxBps=7500)` is actionable, 0x1a2b... is
not. The decoder maps the 4-byte selector of every ABI `error` entry to its name and argument
types, and also knows Solidity's two built-ins, `Error(string)` and `Panic(uint256)`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import (
    abi_to_signature,
    function_signature_to_4byte_selector,
    get_abi_input_types,
    to_checksum_address,
)

from chain_adapters.exceptions import ChainError, ContractRevert, TransactionError

ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)

# https://docs.soliditylang.org/en/latest/control-structures.html#panic-via-assert-and-error-via-require
PANIC_REASONS: dict[int, str] = {
    0x00: "generic compiler panic",
    0x01: "assert failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "corrupt storage byte array",
    0x31: "pop on empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to zero-initialised internal function",
}

ABI = Sequence[Mapping[str, Any]]


class FeeCapExceeded(TransactionError):
    """The chain's base fee is above the configured `max_fee_gwei`: sending would only hang."""


class NonceGap(TransactionError):
    """A nonce was allocated but its transaction could not be broadcast nor cancelled.

    Later transactions of the same sender stay unmined until that nonce is filled; the message
    names the nonce so an operator can fill it (send any transaction with that nonce).
    """


class UnsupportedDialect(ChainError):
    """The nonce allocator does not know how to lock rows on this database."""


@dataclass(frozen=True, slots=True)
class DecodedError:
    name: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _ErrorSpec:
    name: str
    types: tuple[str, ...]
    arg_names: tuple[str, ...]


class ErrorDecoder:
    """Selector -> custom error, built from any number of ABIs (later entries never override)."""

    def __init__(self, abis: Iterable[ABI] = ()) -> None:
        self._specs: dict[bytes, _ErrorSpec] = {}
        for abi in abis:
            self.add_abi(abi)

    def add_abi(self, abi: ABI) -> None:
        for entry in abi:
            if entry.get("type") != "error":
                continue
            selector = function_signature_to_4byte_selector(abi_to_signature(entry))  # type: ignore[arg-type]
            if selector in self._specs:
                continue
            inputs = entry.get("inputs", [])
            self._specs[selector] = _ErrorSpec(
                name=str(entry["name"]),
                types=tuple(get_abi_input_types(entry)),  # type: ignore[arg-type]
                arg_names=tuple(
                    str(item.get("name") or f"arg{i}") for i, item in enumerate(inputs)
                ),
            )

    def merged(self, abi: ABI) -> ErrorDecoder:
        """A copy that also knows `abi`: per-call ABIs must not leak into the shared decoder."""
        copy = ErrorDecoder()
        copy._specs = dict(self._specs)
        copy.add_abi(abi)
        return copy

    def decode(self, data: bytes) -> DecodedError | None:
        """Name and arguments of the revert, or None when the selector is unknown."""
        if len(data) < 4:
            return None
        selector, payload = data[:4], data[4:]
        try:
            if selector == ERROR_STRING_SELECTOR:
                (message,) = abi_decode(["string"], payload)
                return DecodedError("Error", {"message": message})
            if selector == PANIC_SELECTOR:
                (code,) = abi_decode(["uint256"], payload)
                return DecodedError(
                    "Panic", {"code": code, "reason": PANIC_REASONS.get(code, "unknown panic")}
                )
            spec = self._specs.get(selector)
            if spec is None:
                return None
            values = abi_decode(list(spec.types), payload)
        except (DecodingError, ValueError, OverflowError):
            return None
        readable = [
            to_checksum_address(v) if t == "address" else v
            for t, v in zip(spec.types, values, strict=True)
        ]
        return DecodedError(spec.name, dict(zip(spec.arg_names, readable, strict=True)))

    def revert(self, data: bytes | None, *, chain: str, tx_hash: str | None) -> ContractRevert:
        """The ContractRevert to raise for `data` (decoded when the selector is known)."""
        decoded = self.decode(data) if data else None
        return ContractRevert(
            chain=chain,
            tx_hash=tx_hash,
            error_name=decoded.name if decoded else None,
            error_args=decoded.args if decoded else None,
            raw_data="0x" + data.hex() if data is not None else None,
        )


def revert_data_from(error: Exception) -> bytes | None:
    """Revert bytes carried by a web3 ContractLogicError (`data` is a hex str or a dict)."""
    data: Any = getattr(error, "data", None)
    if isinstance(data, Mapping):
        data = data.get("data") or data.get("result")
    if isinstance(data, str):
        text = data.removeprefix("Reverted ").strip()
        if text.startswith("0x"):
            try:
                return bytes.fromhex(text[2:])
            except ValueError:
                return None
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    return None
