"""Salted commitments: the exact byte layout a third-party verifier must reproduce."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.receipts.canonical import CanonicalizationError
from backend.receipts.commitment import SALT_SIZE, commitment, leaf_hash, new_salt

RECEIPT = {"type": "repayment", "schema": 1, "tenant": "t-1", "payload": {"amount": "1500"}}


def test_known_answer_layout() -> None:
    """SHA-256("credagg-receipt/v1" || salt32 || JCS(receipt)), computed here by hand."""
    salt = bytes(range(32))
    jcs = b'{"payload":{"amount":"1500"},"schema":1,"tenant":"t-1","type":"repayment"}'
    expected = hashlib.sha256(b"credagg-receipt/v1" + salt + jcs).digest()
    assert commitment(RECEIPT, salt) == expected


def test_leaf_hash_is_the_rfc9162_leaf_of_the_commitment() -> None:
    c = commitment(RECEIPT, new_salt())
    assert leaf_hash(c) == hashlib.sha256(b"\x00" + c).digest()


@pytest.mark.parametrize("salt", [b"", b"\x00" * 31, b"\x00" * 33, "0" * 32, bytearray(32)])
def test_salt_must_be_exactly_32_bytes(salt: object) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        commitment(RECEIPT, salt)  # type: ignore[arg-type]


def test_refuses_non_objects_and_non_json_receipts() -> None:
    with pytest.raises(ValueError, match="mapping"):
        commitment([1, 2], new_salt())  # type: ignore[arg-type]
    with pytest.raises(CanonicalizationError):
        commitment({"amount": float("nan")}, new_salt())


@pytest.mark.parametrize("value", [b"", b"\x00" * 31, b"\x00" * 33, "00" * 32])
def test_leaf_hash_wants_a_commitment(value: object) -> None:
    with pytest.raises(ValueError):
        leaf_hash(value)  # type: ignore[arg-type]


def test_new_salt_is_fresh_and_sized() -> None:
    salts = {new_salt() for _ in range(100)}
    assert len(salts) == 100
    assert all(len(salt) == SALT_SIZE for salt in salts)


@given(
    st.dictionaries(st.text(), st.integers(-1000, 1000) | st.text(), min_size=1),
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=32, max_size=32),
)
def test_commitment_depends_on_content_and_salt_not_key_order(
    receipt: dict[str, object], salt: bytes, other_salt: bytes
) -> None:
    reordered = dict(reversed(list(receipt.items())))
    assert commitment(reordered, salt) == commitment(receipt, salt)
    assert (commitment(receipt, other_salt) == commitment(receipt, salt)) == (salt == other_salt)
    changed = {**receipt, "extra\u0000": None}
    assert commitment(changed, salt) != commitment(receipt, salt)
