"""Webhook signatures: `Credagg-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`.

Each `v1` is HMAC-SHA256(secret, f"{t}.{raw_body}") in lowercase hex. During a secret rotation
the header carries one `v1` per valid secret (new and previous), so a receiver still holding the
old secret keeps verifying until it switches, as with Stripe's multiple `v1=` entries.

`verify_signature` is deliberately standalone (Python standard library only, no import from
the rest of credagg): a lender may copy this file, or just that function and its exception, into
its own code base. docs/webhooks.md shows it and a Node.js equivalent.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable

SIGNATURE_HEADER = "Credagg-Signature"
#: How far a timestamp may be from the receiver's clock (either way), in seconds.
DEFAULT_TOLERANCE_SECONDS = 300
SCHEME = "v1"


class WebhookVerificationError(ValueError):
    """The request did not come from credagg (or was replayed too late): reject it."""


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `f"{timestamp}.{body}"` under `secret`."""
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature_header(secrets: Iterable[str], body: bytes, *, timestamp: int) -> str:
    """The header value signing `body` at `timestamp` with every one of `secrets`."""
    parts = [f"t={timestamp}"]
    parts += [f"{SCHEME}={compute_signature(secret, timestamp, body)}" for secret in secrets]
    if len(parts) == 1:
        raise ValueError("at least one secret is needed to sign a webhook")
    return ",".join(parts)


def verify_signature(
    body: bytes,
    header: str,
    secret: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: int | None = None,
) -> int:
    """Check a `Credagg-Signature` header against the raw request body; return its timestamp.

    `body` must be the exact bytes received (before any JSON parsing). Raises
    `WebhookVerificationError` if the header is malformed, no `v1` signature matches `secret`,
    or the timestamp is more than `tolerance` seconds from `now` (default: this machine's clock),
    which stops a captured request from being replayed later. Comparison is constant-time.
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise WebhookVerificationError("signature header has a non-integer t=") from None
        elif key == SCHEME:
            candidates.append(value)
    if timestamp is None:
        raise WebhookVerificationError("signature header has no t= timestamp")
    if not candidates:
        raise WebhookVerificationError(f"signature header has no {SCHEME}= signature")
    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError(
            f"timestamp {timestamp} is {abs(current - timestamp)}s from now "
            f"(tolerance {tolerance}s): replayed or clock skew"
        )
    expected = compute_signature(secret, timestamp, body)
    # Check every candidate (no early exit) so timing says nothing about which one matched.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookVerificationError("no signature matches this secret and body")
    return timestamp
