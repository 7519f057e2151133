"""Errors of the Idempotency-Key protocol (rendered by the middleware, not by a route)."""

from __future__ import annotations

from backend.exceptions import BadRequest, Conflict, CredaggError, Unprocessable


class IdempotencyError(CredaggError):
    """Root of the idempotency family."""


class InvalidIdempotencyKey(IdempotencyError, BadRequest):
    """The Idempotency-Key header is empty, too long or has non-printable characters."""

    code = "invalid_idempotency_key"


class IdempotencyKeyReused(IdempotencyError, Unprocessable):
    """The Idempotency-Key was already used for a different request."""

    code = "idempotency_key_reused"


class IdempotencyInProgress(IdempotencyError, Conflict):
    """A request with this Idempotency-Key is still running; retry after `Retry-After`."""

    code = "idempotency_in_progress"


class IdempotencyOutcomeUnknown(IdempotencyError, Conflict):
    """The first request with this key committed its changes but its response was lost."""

    code = "idempotency_outcome_unknown"
