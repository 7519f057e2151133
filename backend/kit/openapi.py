"""Document in the OpenAPI schema what middleware does to every route.

Idempotency (`Idempotency-Key` on every POST) and rate limits (429 with `Retry-After` on every
limited path) are pure ASGI middleware, so FastAPI cannot see them when it builds the schema from
the routes. Without this, generated clients would not know the header exists, and a 429 or an
idempotency conflict would be an undocumented status. Each response points at the one error
model (`ErrorBody`) and names its error codes, like the routes' own `error_responses`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI

from backend.exceptions import CredaggError, RateLimited
from backend.idempotency.exceptions import (
    IdempotencyInProgress,
    IdempotencyKeyReused,
    IdempotencyOutcomeUnknown,
    InvalidIdempotencyKey,
)
from backend.idempotency.service import HEADER, MAX_KEY_LENGTH
from backend.ratelimit.middleware import EXEMPT_PATHS

ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}
IDEMPOTENCY_ERRORS: tuple[type[CredaggError], ...] = (
    InvalidIdempotencyKey,
    IdempotencyInProgress,
    IdempotencyOutcomeUnknown,
    IdempotencyKeyReused,
)
IDEMPOTENCY_PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Any 1-255 printable ASCII characters unique to this operation: a retry with the same "
        "key and body gets the stored response again (`Idempotent-Replayed: true`); the same "
        "key with another body is a 422."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer"},
    }
}


def document_middleware(app: FastAPI) -> None:
    """Wrap `app.openapi` so the generated schema carries the middleware's contract (429 is
    documented even where limits are switched off: one contract for every deployment)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for path, operations in schema.get("paths", {}).items():
                for method, operation in operations.items():
                    if method == "post":
                        _document_idempotency(operation)
                    if path not in EXEMPT_PATHS:
                        _add_errors(operation, [RateLimited], headers=RETRY_AFTER)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_idempotency(operation: dict[str, Any]) -> None:
    parameters = operation.setdefault("parameters", [])
    if not any(p.get("name") == HEADER for p in parameters):
        parameters.append(dict(IDEMPOTENCY_PARAMETER))
    _add_errors(operation, IDEMPOTENCY_ERRORS)


def _add_errors(
    operation: dict[str, Any],
    errors: Iterable[type[CredaggError]],
    *,
    headers: dict[str, Any] | None = None,
) -> None:
    """Merge error codes into the operation's responses, one entry per status."""
    responses = operation.setdefault("responses", {})
    for error in errors:
        line = f"`{error.code}`: {(error.__doc__ or '').strip().splitlines()[0]}"
        entry = responses.setdefault(
            str(error.status_code),
            {"description": "", "content": {"application/json": {"schema": ERROR_BODY}}},
        )
        if line not in entry["description"]:
            entry["description"] = "; ".join(x for x in (entry["description"], line) if x)
        entry.setdefault("content", {"application/json": {"schema": ERROR_BODY}})
        if headers:
            entry.setdefault("headers", {}).update(headers)
