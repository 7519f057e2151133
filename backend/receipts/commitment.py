"""Salted receipt commitments and the log leaves built from them.

The log's roots are public (they go on-chain), and many receipts are low-entropy: an amount, a
wallet, a date. Without the random 32-byte salt anyone could confirm a guessed receipt against a
published root; with it, only a holder of the receipt and its salt can. The domain tag keeps a
commitment from ever equalling a hash made for another purpose.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping

from backend.receipts.canonical import canonical_json
from backend.receipts.merkle import HASH_SIZE, hash_leaf

__all__ = [
    "COMMITMENT_DOMAIN",
    "SALT_SIZE",
    "commitment",
    "commitment_of_canonical",
    "leaf_hash",
    "new_salt",
]

COMMITMENT_DOMAIN = b"credagg-receipt/v1"
SALT_SIZE = 32


def new_salt() -> bytes:
    """A fresh salt from the OS CSPRNG; store it beside the receipt, it is needed to verify."""
    return secrets.token_bytes(SALT_SIZE)


def commitment(receipt: Mapping[str, object], salt: bytes) -> bytes:
    """SHA-256("credagg-receipt/v1" || salt || JCS(receipt)).

    The salt has a fixed length so the boundary between salt and receipt is unambiguous.
    """
    if not isinstance(receipt, Mapping):
        raise ValueError("a receipt must be a JSON object (a mapping)")
    return commitment_of_canonical(canonical_json(receipt), salt)


def commitment_of_canonical(canonical: bytes, salt: bytes) -> bytes:
    """`commitment` for a receipt whose JCS bytes the caller already holds (made once, reused)."""
    if not isinstance(salt, bytes) or len(salt) != SALT_SIZE:
        raise ValueError(f"salt must be exactly {SALT_SIZE} bytes (use new_salt())")
    return hashlib.sha256(COMMITMENT_DOMAIN + salt + canonical).digest()


def leaf_hash(commitment: bytes) -> bytes:
    """The RFC 9162 leaf for a commitment: SHA-256(0x00 || commitment)."""
    if not isinstance(commitment, bytes) or len(commitment) != HASH_SIZE:
        raise ValueError(f"a commitment is exactly {HASH_SIZE} bytes")
    return hash_leaf(commitment)
