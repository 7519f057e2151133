"""Ed25519 signatures over issuance promises and log checkpoints.

Every signed message starts with a tag naming what it is, so a signature made for one purpose is
never accepted as another: an issuance signature never verifies as a checkpoint.

- A checkpoint message is the JCS encoding of {"v": "credagg-checkpoint/v1", "key", "size",
  "root", "time"}.
- An issuance message (v2) is fixed-layout binary, cheap to build once per receipt and easy to
  rebuild in any language:

      b"credagg-issuance/v2" || u8(len(key_id)) || key_id (ASCII) || commitment (32 bytes)
      || u64be(issued_at) || u64be(include_by)

  with both times in microseconds since the Unix epoch (UTC). `include_by` is the log's promise:
  the receipt will be in a signed, anchored checkpoint no later than that. Signing it makes a
  broken promise provable (the verifier reports `included_late`).

The key id is inside both messages, so it cannot be swapped to point at another key.

Verification never raises: an auditor's tool gets False for any malformed input.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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
    "epoch_micros",
    "format_timestamp",
    "issuance_message",
    "key_id_for",
    "parse_timestamp",
    "verify_checkpoint",
    "verify_commitment_signature",
]

ISSUANCE_VERSION = "credagg-issuance/v2"
CHECKPOINT_VERSION = "credagg-checkpoint/v1"
SEED_SIZE = 32
PUBLIC_KEY_SIZE = 32


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIMESTAMP = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$")
MAX_UINT64 = 2**64 - 1


@dataclass(frozen=True)
class Signature:
    """An issuance signature: the log's promise, given at once, to include the commitment in a
    checkpoint by `include_by`. Both times are aware UTC datetimes, signed to the microsecond."""

    key_id: str
    signature_hex: str
    issued_at: datetime
    include_by: datetime


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


def format_timestamp(moment: datetime) -> str:
    """The one string form of a time in receipts and bundles: UTC, microseconds, 'Z'."""
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ValueError(f"{moment!r} is not an aware datetime: pass an aware (UTC) datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """Inverse of `format_timestamp`; only that exact form is accepted (one spelling per time)."""
    if not isinstance(text, str) or not _TIMESTAMP.match(text):
        raise ValueError(f"expected a time like '2025-11-23T12:00:00.000000Z', got {text!r}")
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def epoch_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (no float rounding)."""
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ValueError(f"{moment!r} is not an aware datetime")
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    if not 0 <= micros <= MAX_UINT64:
        raise ValueError(f"{moment!r} is before 1970 or too far ahead")
    return micros


def issuance_message(
    commitment: bytes, key_id: str, issued_at: datetime, include_by: datetime
) -> bytes:
    """The bytes an issuance signature covers (layout in the module docstring)."""
    key = _key_id_bytes(key_id)
    if not isinstance(commitment, bytes) or len(commitment) != HASH_SIZE:
        raise ValueError(f"a commitment is exactly {HASH_SIZE} bytes")
    issued, promised = epoch_micros(issued_at), epoch_micros(include_by)
    if promised < issued:
        raise ValueError("include_by is before issued_at: a promise cannot precede the receipt")
    return b"".join(
        (
            _ISSUANCE_TAG,
            bytes((len(key),)),
            key,
            commitment,
            issued.to_bytes(8, "big"),
            promised.to_bytes(8, "big"),
        )
    )


_ISSUANCE_TAG = ISSUANCE_VERSION.encode("ascii")


def _key_id_bytes(key_id: str) -> bytes:
    _check_key_id(key_id)
    if not key_id.isascii() or len(key_id) > 255:
        raise ValueError(f"a key id is 1 to 255 ASCII characters, got {key_id!r}")
    return key_id.encode("ascii")


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

    def sign_commitment(
        self, commitment: bytes, *, issued_at: datetime, include_by: datetime
    ) -> Signature:
        """Promise to include `commitment` in a checkpoint by `include_by`."""
        message = issuance_message(commitment, self.key_id, issued_at, include_by)
        return Signature(self.key_id, self._key.sign(message).hex(), issued_at, include_by)

    def sign_checkpoint(self, size: int, root: bytes, timestamp: int) -> SignedCheckpoint:
        message = checkpoint_message(size, root, timestamp, self.key_id)
        return SignedCheckpoint(size, root, timestamp, self.key_id, self._key.sign(message).hex())


def verify_commitment_signature(
    public_key_bytes: bytes, commitment: bytes, signature: Signature
) -> bool:
    try:
        message = issuance_message(
            commitment, signature.key_id, signature.issued_at, signature.include_by
        )
    except (ValueError, AttributeError, TypeError):
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
