"""Ed25519 issuance signatures and signed checkpoints: round trips, and any tampering fails."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.receipts.commitment import commitment, new_salt
from backend.receipts.merkle import merkle_root
from backend.receipts.signing import (
    ReceiptSigner,
    SignedCheckpoint,
    checkpoint_message,
    epoch_micros,
    format_timestamp,
    issuance_message,
    parse_timestamp,
    verify_checkpoint,
    verify_commitment_signature,
)

SEED = bytes(range(32))
ISSUED_AT = datetime(2025, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)
INCLUDE_BY = ISSUED_AT + timedelta(minutes=10)
TIMES = {"issued_at": ISSUED_AT, "include_by": INCLUDE_BY}
OTHER_SEED = bytes(range(1, 33))
COMMITMENT = commitment({"type": "acceptance", "n": 1}, bytes(32))
ROOT = merkle_root([b"a", b"b", b"c"])


def flip_hex(text: str, bit: int) -> str:
    data = bytearray(bytes.fromhex(text))
    bit %= len(data) * 8
    data[bit // 8] ^= 1 << (bit % 8)
    return data.hex()


def flip(data: bytes, bit: int) -> bytes:
    return bytes.fromhex(flip_hex(data.hex(), bit))


def test_rfc8032_test_vector_1_public_key() -> None:
    """The seed is the RFC 8032 private key: §7.1 TEST 1 maps this seed to this public key."""
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    signer = ReceiptSigner(seed)
    assert signer.public_key_bytes.hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )


def test_key_id_defaults_to_a_hash_of_the_public_key() -> None:
    signer = ReceiptSigner(SEED)
    assert signer.key_id == hashlib.sha256(signer.public_key_bytes).hexdigest()[:16]
    assert ReceiptSigner(SEED, key_id="log-2026").key_id == "log-2026"


def test_commitment_signature_round_trip() -> None:
    signer = ReceiptSigner(SEED)
    signature = signer.sign_commitment(COMMITMENT, **TIMES)
    assert signature.key_id == signer.key_id
    assert verify_commitment_signature(signer.public_key_bytes, COMMITMENT, signature)
    assert signer.sign_commitment(COMMITMENT, **TIMES) == signature  # Ed25519 is deterministic


@given(st.integers(0, 511))
def test_tampered_commitment_signature_fails(bit: int) -> None:
    signer = ReceiptSigner(SEED)
    signature = signer.sign_commitment(COMMITMENT, **TIMES)
    public = signer.public_key_bytes
    assert not verify_commitment_signature(public, flip(COMMITMENT, bit), signature)
    bad = dataclasses.replace(signature, signature_hex=flip_hex(signature.signature_hex, bit))
    assert not verify_commitment_signature(public, COMMITMENT, bad)
    assert not verify_commitment_signature(
        public, COMMITMENT, dataclasses.replace(signature, key_id=signature.key_id + "0")
    )
    assert not verify_commitment_signature(
        ReceiptSigner(OTHER_SEED).public_key_bytes, COMMITMENT, signature
    )


@given(st.integers(1, 10**12))
def test_the_signed_times_are_bound_to_the_microsecond(delta: int) -> None:
    """Moving issued_at or the promised include_by by any amount breaks the signature."""
    signer = ReceiptSigner(SEED)
    signature = signer.sign_commitment(COMMITMENT, **TIMES)
    public = signer.public_key_bytes
    shift = timedelta(microseconds=delta)
    for bad in (
        dataclasses.replace(signature, include_by=INCLUDE_BY + shift),
        dataclasses.replace(signature, include_by=max(ISSUED_AT, INCLUDE_BY - shift)),
        dataclasses.replace(signature, issued_at=ISSUED_AT - shift),
    ):
        assert not verify_commitment_signature(public, COMMITMENT, bad)


def test_issuance_message_v2_layout() -> None:
    """Domain tag, length-prefixed key id, commitment, then both times as u64 microseconds."""
    issued = 1_763_899_200_123_456  # ISSUED_AT in microseconds since the epoch
    assert epoch_micros(ISSUED_AT) == issued
    message = issuance_message(COMMITMENT, "k1", ISSUED_AT, INCLUDE_BY)
    assert message == (
        b"credagg-issuance/v2"
        + b"\x02k1"
        + COMMITMENT
        + issued.to_bytes(8, "big")
        + (issued + 600_000_000).to_bytes(8, "big")
    )
    with pytest.raises(ValueError, match="include_by"):
        issuance_message(COMMITMENT, "k1", INCLUDE_BY, ISSUED_AT)


def test_timestamps_have_one_spelling() -> None:
    assert format_timestamp(ISSUED_AT) == "2025-11-23T12:00:00.123456Z"
    assert parse_timestamp("2025-11-23T12:00:00.123456Z") == ISSUED_AT
    for text in ("2025-11-23T12:00:00Z", "2025-11-23T12:00:00.123456+00:00", "", 5):
        with pytest.raises(ValueError):
            parse_timestamp(text)  # type: ignore[arg-type]


def test_checkpoint_round_trip() -> None:
    signer = ReceiptSigner(SEED)
    checkpoint = signer.sign_checkpoint(3, ROOT, 1_790_000_000)
    assert (checkpoint.size, checkpoint.root, checkpoint.timestamp) == (3, ROOT, 1_790_000_000)
    assert checkpoint.key_id == signer.key_id
    assert verify_checkpoint(signer.public_key_bytes, checkpoint)


def test_checkpoint_message_is_canonical_json() -> None:
    message = checkpoint_message(3, ROOT, 1_790_000_000, "k1")
    assert message == (
        b'{"key":"k1","root":"'
        + ROOT.hex().encode()
        + b'","size":3,"time":1790000000,"v":"credagg-checkpoint/v1"}'
    )


@given(st.integers(0, 511), st.integers(1, 10**6))
def test_tampering_any_checkpoint_field_fails(bit: int, delta: int) -> None:
    signer = ReceiptSigner(SEED)
    checkpoint = signer.sign_checkpoint(3, ROOT, 1_790_000_000)
    public = signer.public_key_bytes
    for bad in (
        dataclasses.replace(checkpoint, size=checkpoint.size + delta),
        dataclasses.replace(checkpoint, root=flip(ROOT, bit)),
        dataclasses.replace(checkpoint, timestamp=checkpoint.timestamp + delta),
        dataclasses.replace(checkpoint, timestamp=checkpoint.timestamp - delta),
        dataclasses.replace(checkpoint, key_id="other"),
        dataclasses.replace(checkpoint, signature_hex=flip_hex(checkpoint.signature_hex, bit)),
    ):
        assert not verify_checkpoint(public, bad)
    assert not verify_checkpoint(ReceiptSigner(OTHER_SEED).public_key_bytes, checkpoint)


def test_a_signature_for_one_purpose_is_not_valid_for_another() -> None:
    signer = ReceiptSigner(SEED)
    issued = signer.sign_commitment(ROOT, **TIMES)
    as_checkpoint = SignedCheckpoint(3, ROOT, 0, issued.key_id, issued.signature_hex)
    assert not verify_checkpoint(signer.public_key_bytes, as_checkpoint)


@pytest.mark.parametrize("public_key", [b"", b"\x00" * 31, b"\x00" * 33, "00" * 32, None])
def test_verification_returns_false_on_garbage(public_key: object) -> None:
    signer = ReceiptSigner(SEED)
    signature = signer.sign_commitment(COMMITMENT, **TIMES)
    checkpoint = signer.sign_checkpoint(3, ROOT, 1)
    assert verify_commitment_signature(public_key, COMMITMENT, signature) is False  # type: ignore[arg-type]
    assert verify_checkpoint(public_key, checkpoint) is False  # type: ignore[arg-type]
    public = signer.public_key_bytes
    for bad_signature in (
        dataclasses.replace(signature, signature_hex="zz"),
        dataclasses.replace(signature, signature_hex=""),
        dataclasses.replace(signature, key_id=""),
        dataclasses.replace(signature, key_id="é"),
        dataclasses.replace(signature, issued_at=ISSUED_AT.replace(tzinfo=None)),
        dataclasses.replace(signature, include_by=ISSUED_AT - timedelta(microseconds=1)),
        None,
    ):
        assert verify_commitment_signature(public, COMMITMENT, bad_signature) is False  # type: ignore[arg-type]
    for bad_checkpoint in (
        dataclasses.replace(checkpoint, size=-1),
        dataclasses.replace(checkpoint, size=True),
        dataclasses.replace(checkpoint, root=b"short"),
        dataclasses.replace(checkpoint, signature_hex="not hex"),
        None,
    ):
        assert verify_checkpoint(public, bad_checkpoint) is False  # type: ignore[arg-type]
    assert verify_commitment_signature(public, b"short", signature) is False


def test_signing_refuses_bad_input() -> None:
    for seed in (b"", b"\x00" * 31, "00" * 32):
        with pytest.raises(ValueError, match="seed"):
            ReceiptSigner(seed)  # type: ignore[arg-type]
    signer = ReceiptSigner(new_salt())
    with pytest.raises(ValueError):
        signer.sign_commitment(b"\x00" * 31, **TIMES)
    with pytest.raises(ValueError):
        signer.sign_checkpoint(-1, ROOT, 0)
    with pytest.raises(ValueError):
        signer.sign_checkpoint(1, ROOT[:31], 0)
    with pytest.raises(ValueError):
        ReceiptSigner(SEED, key_id="").sign_commitment(COMMITMENT, **TIMES)
