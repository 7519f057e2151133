"""Ed25519 signatures over issuance promises and log checkpoints.

Every signed message is the JCS encoding of an object whose "v" names what it is. That makes each
message unambiguous (no field can bleed into another), and it stops a signature made for one
purpose from being replayed as another: an issuance signature never verifies as a checkpoint.
The key id is inside the signed message, so it cannot be swapped to point at another key.

Verification never raises: an auditor's tool gets False for any malformed input.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from backend.receipts.canonical import canonical_json
from backend.receipts.merkle import HASH_SIZE

__all__ = [
    "CHECKPOINT_VERSION",
    "ISSUANCE_VERSION",
    "ReceiptSigner",
    "Signature",
    "SignedCheckpoint",
    "checkpoint_message",
    "issuance_message",
    "key_id_for",
    "verify_checkpoint",
    "verify_commitment_signature",
]

ISSUANCE_VERSION = "credagg-issuance/v1"
CHECKPOINT_VERSION = "credagg-checkpoint/v1"
SEED_SIZE = 32
PUBLIC_KEY_SIZE = 32


@dataclass(frozen=True)
class Signature:
    """An issuance signature: the log's promise, given at once, to include the commitment."""

    key_id: str
    signature_hex: str


@dataclass(frozen=True)
class SignedCheckpoint:
    """The log's signed statement that the tree of `size` entries has `root` (at `timestamp`)."""

    size: int
    root: bytes
    timestamp: int  # Unix seconds, UTC
    key_id: str
    signature_hex: str


def key_id_for(public_key_bytes: bytes) -> str:
    """First 16 hex digits of SHA-256(raw public key): short, and derivable by any verifier."""
    return hashlib.sha256(public_key_bytes).hexdigest()[:16]


def issuance_message(commitment: bytes, key_id: str) -> bytes:
    """The bytes an issuance signature covers; public so other verifiers can rebuild them."""
    _check_key_id(key_id)
    if not isinstance(commitment, bytes) or len(commitment) != HASH_SIZE:
        raise ValueError(f"a commitment is exactly {HASH_SIZE} bytes")
    return canonical_json({"v": ISSUANCE_VERSION, "key": key_id, "commitment": commitment.hex()})


def checkpoint_message(size: int, root: bytes, timestamp: int, key_id: str) -> bytes:
    """The bytes a checkpoint signature covers; size and root are signed together, which is
    what binds a root to its size (an inclusion proof alone does not)."""
    _check_key_id(key_id)
    for name, number in (("size", size), ("timestamp", timestamp)):
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise ValueError(f"checkpoint {name} must be a non-negative integer, got {number!r}")
    if not isinstance(root, bytes) or len(root) != HASH_SIZE:
        raise ValueError(f"a tree root is exactly {HASH_SIZE} bytes")
    fields = {"size": size, "root": root.hex(), "time": timestamp}
    return canonical_json({"v": CHECKPOINT_VERSION, "key": key_id, **fields})


def _check_key_id(key_id: str) -> None:
    if not isinstance(key_id, str) or not key_id:
        raise ValueError(f"a key id is a non-empty string, got {key_id!r}")


class ReceiptSigner:
    """Holds the log's Ed25519 key; built from a 32-byte seed kept in the secret store."""

    def __init__(self, seed: bytes, key_id: str | None = None) -> None:
        if not isinstance(seed, bytes) or len(seed) != SEED_SIZE:
            raise ValueError(f"an Ed25519 seed is exactly {SEED_SIZE} bytes")
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key_bytes = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = key_id if key_id is not None else key_id_for(self.public_key_bytes)

    def sign_commitment(self, commitment: bytes) -> Signature:
        message = issuance_message(commitment, self.key_id)
        return Signature(self.key_id, self._key.sign(message).hex())

    def sign_checkpoint(self, size: int, root: bytes, timestamp: int) -> SignedCheckpoint:
        message = checkpoint_message(size, root, timestamp, self.key_id)
        return SignedCheckpoint(size, root, timestamp, self.key_id, self._key.sign(message).hex())


def verify_commitment_signature(
    public_key_bytes: bytes, commitment: bytes, signature: Signature
) -> bool:
    try:
        message = issuance_message(commitment, signature.key_id)
    except (ValueError, AttributeError):
        return False
    return _verify(public_key_bytes, message, signature.signature_hex)


def verify_checkpoint(public_key_bytes: bytes, checkpoint: SignedCheckpoint) -> bool:
    try:
        message = checkpoint_message(
            checkpoint.size, checkpoint.root, checkpoint.timestamp, checkpoint.key_id
        )
    except (ValueError, AttributeError):
        return False
    return _verify(public_key_bytes, message, checkpoint.signature_hex)


def _verify(public_key_bytes: bytes, message: bytes, signature_hex: str) -> bool:
    if not isinstance(public_key_bytes, bytes) or len(public_key_bytes) != PUBLIC_KEY_SIZE:
        return False
    try:
        signature = bytes.fromhex(signature_hex)
        Ed25519PublicKey.from_public_bytes(public_key_bytes).verify(signature, message)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
