"""The audit domain's errors."""

from __future__ import annotations

from backend.exceptions import CredaggError, ServiceUnavailable


class AuditError(CredaggError):
    """Root of the audit domain's errors."""

    code = "audit_error"


class RequestAbandoned(AuditError, ServiceUnavailable):
    """The request was already answered (and audited) as failed, e.g. by the timeout.

    Raised in the request's own transaction just before it would commit, so the work is rolled
    back: a client told "504" must not find that the change happened anyway, unaudited.
    """

    code = "request_abandoned"
