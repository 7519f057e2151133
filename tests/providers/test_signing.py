"""The copyable verifier: what it accepts and every way it refuses."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.providers.webhooks import signing
from backend.providers.webhooks.signing import (
    WebhookVerificationError,
    compute_signature,
    signature_header,
    verify_signature,
)

SECRET = "whsec_test-secret"
OTHER = "whsec_other-secret"
T = 1_800_000_000
BODY = b'{"id":"evt_1","type":"credit_request.created","data":{"amount":"100"}}'


def test_round_trip_returns_the_timestamp() -> None:
    header = signature_header([SECRET], BODY, timestamp=T)
    assert verify_signature(BODY, header, SECRET, now=T) == T


def test_signature_is_hmac_sha256_of_t_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert compute_signature(SECRET, T, BODY) == expected
    assert signature_header([SECRET], BODY, timestamp=T) == f"t={T},v1={expected}"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda body, header: (body + b" ", header), "no signature matches"),
        (lambda body, header: (body.replace(b"100", b"900"), header), "no signature matches"),
        (lambda body, header: (body, header.replace(f"t={T}", f"t={T + 1}")), "no signature"),
        (lambda body, header: (body, header.replace("v1=", "v0=")), "no v1="),
        (lambda body, header: (body, header.split(",")[1]), "no t="),
        (lambda body, header: (body, "t=abc," + header.split(",")[1]), "non-integer"),
        (lambda body, header: (body, ""), "no t="),
    ],
)
def test_tampering_is_rejected(mutate: object, reason: str) -> None:
    header = signature_header([SECRET], BODY, timestamp=T)
    body, bad_header = mutate(BODY, header)  # type: ignore[operator]
    with pytest.raises(WebhookVerificationError, match=reason):
        verify_signature(body, bad_header, SECRET, now=T)


def test_wrong_secret_is_rejected() -> None:
    header = signature_header([OTHER], BODY, timestamp=T)
    with pytest.raises(WebhookVerificationError, match="no signature matches"):
        verify_signature(BODY, header, SECRET, now=T)


@pytest.mark.parametrize("skew", [301, -301, 3600])
def test_timestamps_beyond_five_minutes_are_rejected(skew: int) -> None:
    header = signature_header([SECRET], BODY, timestamp=T)
    with pytest.raises(WebhookVerificationError, match="tolerance 300s"):
        verify_signature(BODY, header, SECRET, now=T + skew)


@pytest.mark.parametrize("skew", [300, -300, 0, 299])
def test_timestamps_within_tolerance_pass(skew: int) -> None:
    header = signature_header([SECRET], BODY, timestamp=T)
    assert verify_signature(BODY, header, SECRET, now=T + skew) == T


def test_either_secret_verifies_a_header_signed_by_both() -> None:
    header = signature_header([SECRET, OTHER], BODY, timestamp=T)
    assert header.count("v1=") == 2
    assert verify_signature(BODY, header, SECRET, now=T) == T
    assert verify_signature(BODY, header, OTHER, now=T) == T
    with pytest.raises(WebhookVerificationError):
        verify_signature(BODY, header, "whsec_third", now=T)


def test_the_verifier_module_uses_only_the_standard_library() -> None:
    tree = ast.parse(Path(signing.__file__).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    import sys

    assert imported - {"__future__"} <= set(sys.stdlib_module_names), imported


@given(secret=st.text(min_size=1), body=st.binary(), timestamp=st.integers(0, 2**40))
def test_any_signed_body_verifies(secret: str, body: bytes, timestamp: int) -> None:
    header = signature_header([secret], body, timestamp=timestamp)
    assert verify_signature(body, header, secret, now=timestamp) == timestamp


@given(body=st.binary(min_size=1), position=st.integers(min_value=0), flip=st.integers(1, 255))
def test_any_flipped_byte_is_rejected(body: bytes, position: int, flip: int) -> None:
    header = signature_header([SECRET], body, timestamp=T)
    index = position % len(body)
    tampered = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
    with pytest.raises(WebhookVerificationError):
        verify_signature(tampered, header, SECRET, now=T)
