"""The life of one Idempotency-Key, in transactions the caller commits.

    claim  --(first time)-->        Claim: run the request, then complete() or release()
           --(same request, done)-> StoredResponse: replay it
           --(same request, running)-> IdempotencyInProgress (409, Retry-After)
           --(different request)-> IdempotencyKeyReused (422)
           --(first run committed, answer lost)-> IdempotencyOutcomeUnknown (409)

The claim is committed before the request runs and the response is stored after it, each in a
short transaction of its own: the request's own transaction (`backend.db.get_db_session`) commits
before the response body exists, so the two cannot share one. What that transaction does record
is `effects_committed_at` (`backend.idempotency.recording`), in the same commit as the effects.
So the gap is explicit, never silent: while a claim is `in_progress` a duplicate is told so
(409); a claim whose holder died is taken over after its lease (`locked_until`) only if nothing
of it committed; otherwise retries get `idempotency_outcome_unknown`, never a second run.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from backend.exceptions import json_nesting_exceeds
from backend.idempotency.exceptions import (
    IdempotencyInProgress,
    IdempotencyKeyReused,
    IdempotencyOutcomeUnknown,
    InvalidIdempotencyKey,
)
from backend.idempotency.models import TABLE, IdempotencyKey, IdempotencyState
from backend.idempotency.repository import IdempotencyRepository
from backend.kit.crypto import FieldCipher, FieldContext

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
IN_PROGRESS_RETRY_AFTER = 1  # seconds: a duplicate usually arrives while the first is finishing

#: Response headers that describe this particular transmission, not the response: a replay
#: gets fresh ones.
_UNSTORED_HEADERS = frozenset(
    {
        "content-length",
        "date",
        "server",
        "x-request-id",
        "set-cookie",
        "retry-after",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-policy",
        "transfer-encoding",
        "connection",
    }
)


def check_key(value: str) -> str:
    """The header value if it is 1-255 printable ASCII characters, else 400."""
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not all(" " <= ch <= "~" for ch in value):
        raise InvalidIdempotencyKey(
            f"the {HEADER} header must be 1-{MAX_KEY_LENGTH} printable ASCII characters "
            f"(got {len(value)} characters)",
            hint=f"Send a fresh random value per operation, e.g. a UUID, in {HEADER}.",
        )
    if not value.strip():
        raise InvalidIdempotencyKey(
            f"the {HEADER} header is blank", hint="Send e.g. a UUID per operation."
        )
    return value


def _decimal_as_text(value: object) -> str:
    if isinstance(value, Decimal):
        return f"\x00decimal:{value}"
    raise TypeError(f"cannot canonicalise {type(value).__name__}")


def canonical_body(body: bytes, content_type: str | None) -> bytes:
    """JSON bodies in one spelling (sorted keys, no whitespace; numbers kept as written), so
    re-serialising the same document does not count as a different request; others raw."""
    if body and content_type and "json" in content_type.lower():
        if json_nesting_exceeds(body):  # refused by JsonNestingGuard; parsing it could crash
            return body
        try:
            document = json.loads(body, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError):
            return body
        return json.dumps(
            document,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            default=_decimal_as_text,
        ).encode("utf-8", "surrogatepass")
    return body


def fingerprint(
    method: str, path: str, query: bytes, body: bytes, content_type: str | None
) -> bytes:
    """SHA-256 of method, path, query string and the canonical body (length-prefixed parts)."""
    digest = hashlib.sha256(b"credagg-idempotency/v1")
    for part in (method.upper().encode(), path.encode(), query, canonical_body(body, content_type)):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Claim:
    """This request holds the key: run it, then `complete` or `release` with these."""

    row_id: int
    owner: str


def _body_context(row_id: int) -> FieldContext:
    return FieldContext(table=TABLE, column="response_body", row_id=row_id)


def claim(
    session: Session,
    cipher: FieldCipher,
    *,
    scope: str,
    key: str,
    fingerprint: bytes,
    now: datetime,
    lease: timedelta,
    ttl: timedelta,
) -> Claim | StoredResponse:
    """Claim (scope, key) for this request, or say why not (see the module docstring).

    On PostgreSQL two first-time claims can both find no row; the second INSERT then fails with
    an IntegrityError when the first commits, and the caller retries in a new transaction.
    """
    repository = IdempotencyRepository(session)
    row = repository.get_for_update(scope, key)
    owner = uuid.uuid4().hex
    if row is not None and row.expires_at <= now:
        repository.delete_row(row)
        row = None
    if row is None:
        created = repository.create(
            IdempotencyKey(
                scope=scope,
                key=key,
                fingerprint=fingerprint,
                state=IdempotencyState.IN_PROGRESS.value,
                owner=owner,
                locked_until=now + lease,
                created_at=now,
                expires_at=now + ttl,
            )
        )
        return Claim(row_id=created.id, owner=owner)
    if row.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            f"{HEADER} {key!r} was already used (at {row.created_at.isoformat()}) for a request "
            "with a different method, path or body; a key may only be retried with the "
            "identical request",
            hint=f"Use a new {HEADER} for a new operation; resend the original body to get the "
            "original response.",
        )
    if row.state == IdempotencyState.COMPLETED.value:
        return _stored(cipher, row)
    if row.locked_until > now:
        raise IdempotencyInProgress(
            f"a request with {HEADER} {key!r} is still being processed",
            hint=f"Retry in {IN_PROGRESS_RETRY_AFTER} s to receive its response.",
            headers={"Retry-After": str(IN_PROGRESS_RETRY_AFTER)},
        )
    if row.effects_committed_at is not None:
        raise IdempotencyOutcomeUnknown(
            f"the first request with {HEADER} {key!r} committed its changes at "
            f"{row.effects_committed_at.isoformat()} but its response was lost; it will not be "
            "run again",
            hint="Look the result up (e.g. list your resources) instead of retrying; use a new "
            f"{HEADER} only for a new operation.",
        )
    # The holder's lease ran out (it crashed or was killed) before committing anything: this
    # request takes over.
    row.owner = owner
    row.locked_until = now + lease
    session.flush()
    return Claim(row_id=row.id, owner=owner)


def _stored(cipher: FieldCipher, row: IdempotencyKey) -> StoredResponse:
    body = b""
    if row.response_body is not None:
        body = cipher.decrypt_bytes(row.response_body, _body_context(row.id))
    headers = [(str(name), str(value)) for name, value in (row.response_headers or [])]
    return StoredResponse(status=int(row.response_status or 200), headers=headers, body=body)


def storable_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in raw
        if name.decode("latin-1").lower() not in _UNSTORED_HEADERS
    ]


def complete(session: Session, cipher: FieldCipher, held: Claim, response: StoredResponse) -> bool:
    """Store the response under the claim; False if the claim was lost (taken over)."""
    return IdempotencyRepository(session).complete(
        held.row_id,
        held.owner,
        status=response.status,
        headers=[list(pair) for pair in response.headers],
        body=cipher.encrypt_bytes(response.body, _body_context(held.row_id)),
    )


def release(session: Session, held: Claim, *, now: datetime) -> bool:
    """After a failed request (5xx or exception): free the key so the client may retry, unless
    the request's changes committed; then only end its lease (retries learn the outcome is
    unknown rather than running it twice). True if the key was freed."""
    repository = IdempotencyRepository(session)
    if repository.release(held.row_id, held.owner):
        return True
    repository.end_lease(held.row_id, held.owner, now)
    return False


def purge_expired(session: Session, *, now: datetime, limit: int = 1000) -> int:
    """Delete up to `limit` expired keys (expired ones are also replaced lazily on reuse)."""
    return IdempotencyRepository(session).delete_expired(now, limit=limit)
