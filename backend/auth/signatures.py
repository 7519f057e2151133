"""Who signed a SIWE message: an EOA (EIP-191 personal_sign) or a contract wallet (EIP-1271).

The EOA check is tried first: if the signature recovers to the message's address, the key that
controls that address signed it (this also covers EIP-7702 accounts, which are EOAs with code).
Otherwise, if the address has code on the message's chain, the wallet contract itself is asked
through the chain adapter: `isValidSignature(eip191Hash(message), signature)` must return the
magic value 0x1626ba7e. A contract that reverts or returns anything else rejects the signature;
a chain that does not answer is a 503 (we could not tell), never a silent accept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_defunct

from backend.auth.exceptions import SignatureCheckUnavailable, SiweInvalid
from chain_adapters.base import ChainAdapter, ContractCall
from chain_adapters.evm.adapter import EvmAdapter
from chain_adapters.exceptions import ChainError, ContractRevert
from chain_adapters.registry import ChainConfig, ChainRegistry

EIP1271_MAGIC = bytes.fromhex("1626ba7e")
EIP1271_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "isValidSignature",
        "stateMutability": "view",
        "inputs": [
            {"name": "hash", "type": "bytes32"},
            {"name": "signature", "type": "bytes"},
        ],
        "outputs": [{"name": "magicValue", "type": "bytes4"}],
    }
]
MAX_SIGNATURE_BYTES = 4096

SignerKind = Literal["eoa", "eip1271"]
AdapterFactory = Callable[[ChainConfig], ChainAdapter]

_HINT = "Sign the exact message text with the wallet of the address it names (EIP-191)."


def decode_signature(text: str) -> bytes:
    """`0x`-prefixed hex -> bytes, or a `signature` rejection."""
    body = text[2:] if text.startswith(("0x", "0X")) else None
    if body is None or len(body) % 2 or len(body) > 2 * MAX_SIGNATURE_BYTES:
        raise SiweInvalid(
            "signature",
            f"expected 0x-prefixed hex of at most {MAX_SIGNATURE_BYTES} bytes",
            hint=_HINT,
        )
    try:
        return bytes.fromhex(body)
    except ValueError:
        raise SiweInvalid("signature", "is not valid hex", hint=_HINT) from None


def recover_eoa(message: str, signature: bytes) -> str | None:
    """The address whose key made this personal_sign signature, or None if it is malformed."""
    if len(signature) != 65:
        return None
    try:
        return str(Account.recover_message(encode_defunct(text=message), signature=signature))
    except Exception:  # eth-keys raises several types for an invalid (r, s, v); all mean "no"
        return None


class SignatureVerifier:
    """Checks SIWE signatures; reads contract wallets on the chains of `chains`."""

    def __init__(
        self, chains: ChainRegistry | None, *, adapter_factory: AdapterFactory | None = None
    ) -> None:
        self._chains = chains
        self._adapter_factory: AdapterFactory = adapter_factory or (lambda c: EvmAdapter(c))

    def verify(self, message: str, address: str, chain_id: int, signature: bytes) -> SignerKind:
        recovered = recover_eoa(message, signature)
        if recovered is not None and recovered.lower() == address.lower():
            return "eoa"
        not_eoa = (
            f"recovers to {recovered}, not {address}"
            if recovered
            else "is not a valid 65-byte ECDSA signature"
        )
        chain = self._chain(chain_id)
        if chain is None:
            raise SiweInvalid(
                "signature",
                f"{not_eoa}, and chain {chain_id} has no RPC configured to check an EIP-1271 "
                "contract wallet",
                hint=_HINT,
            )
        adapter = self._adapter_factory(chain)
        try:
            code = adapter.get_code(address)
            if not code:
                raise SiweInvalid(
                    "signature",
                    f"{not_eoa}, and {address} has no contract code on chain {chain_id} "
                    "(so it is not an EIP-1271 wallet there)",
                    hint=_HINT,
                )
            digest = _hash_eip191_message(encode_defunct(text=message))
            result = adapter.call(
                ContractCall(address, EIP1271_ABI, "isValidSignature", (digest, signature))
            )
        except ContractRevert as exc:
            raise SiweInvalid(
                "signature",
                f"the EIP-1271 wallet {address} on chain {chain_id} reverted: {exc}",
                hint=_HINT,
            ) from None
        except ChainError as exc:
            raise SignatureCheckUnavailable(
                f"could not ask the EIP-1271 wallet {address} on chain {chain_id}: {exc}",
                hint="Retry shortly; the chain's RPC did not answer.",
            ) from None
        finally:
            adapter.close()
        magic = bytes(result) if isinstance(result, bytes | bytearray) else b""
        if magic != EIP1271_MAGIC:
            raise SiweInvalid(
                "signature",
                f"the EIP-1271 wallet {address} on chain {chain_id} returned "
                f"0x{magic.hex()}, not the magic value 0x{EIP1271_MAGIC.hex()}",
                hint=_HINT,
            )
        return "eip1271"

    def _chain(self, chain_id: int) -> ChainConfig | None:
        if self._chains is None:
            return None
        try:
            return self._chains.by_chain_id(chain_id)
        except ChainError:
            return None
