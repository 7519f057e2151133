"""The error model of the API: one root exception, one handler, one body shape.

Every error response, whatever raised it, has the body

    {"error": "<code>", "detail": "<what went wrong>", "hint": "<what to do>",
     "request_id": "<id>", "errors": [...]}

`error` is a stable machine-readable code; `detail` and `hint` are for the human reading it;
`errors` lists field problems for validation errors; `hint` and `errors` appear when they apply.

Domain packages define their own family under one of the HTTP-semantic bases below, e.g.
`class QuoteExpired(CreditError, Conflict)` in `backend/credit/exceptions.py`, and list the
errors an endpoint can raise in its OpenAPI `responses` with `error_responses(...)`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.observability.context import REQUEST_ID_HEADER, get_request_id

logger = logging.getLogger("credagg.errors")


class FieldProblem(BaseModel):
    """One invalid input: where it is (`body.amount`, `query.limit`) and what is wrong."""

    field: str
    message: str
    type: str


class ErrorBody(BaseModel):
    """The JSON body of every error response."""

    error: str
    detail: str
    hint: str | None = None
    request_id: str | None = None
    errors: list[FieldProblem] | None = None


class CredaggError(Exception):
    """Root of every error the API turns into a response.

    Subclasses set `status_code` and `code`; instances carry the `detail` (what was wrong) and an
    optional `hint` (what the caller can do about it).
    """

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(
        self, detail: str, *, hint: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.hint = hint
        self.headers = headers


class BadRequest(CredaggError):
    """The request is well-formed but cannot be acted on as asked."""

    status_code = 400
    code = "bad_request"


class Unauthorized(CredaggError):
    """No valid credentials (session or API key) came with the request."""

    status_code = 401
    code = "unauthorized"


class Forbidden(CredaggError):
    """The credentials are valid but do not allow this action."""

    status_code = 403
    code = "forbidden"


class NotFound(CredaggError):
    """The addressed resource does not exist (or is not visible to the caller)."""

    status_code = 404
    code = "not_found"


class Conflict(CredaggError):
    """The request contradicts the current state (duplicate, expired, already done)."""

    status_code = 409
    code = "conflict"


class Unprocessable(CredaggError):
    """The input is valid JSON of the right shape but breaks a business rule."""

    status_code = 422
    code = "unprocessable"


class RateLimited(CredaggError):
    """Too many requests; retry after the `Retry-After` header."""

    status_code = 429
    code = "rate_limited"


class UpstreamError(CredaggError):
    """A dependency we call (RPC node, provider API) failed or answered nonsense."""

    status_code = 502
    code = "upstream_error"


class ServiceUnavailable(CredaggError):
    """A component we need is down; the same request may succeed later."""

    status_code = 503
    code = "service_unavailable"


class RequestTimeout(CredaggError):
    """The request took longer than `CREDAGG_REQUEST_TIMEOUT` and was abandoned."""

    status_code = 504
    code = "request_timeout"


_HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


def error_response(
    status_code: int,
    code: str,
    detail: str,
    *,
    hint: str | None = None,
    errors: list[FieldProblem] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """Render the one error body shape (and echo the request id header)."""
    request_id = get_request_id()
    body = ErrorBody(
        error=code, detail=detail, hint=hint, request_id=request_id, errors=errors
    ).model_dump(exclude_none=True)
    all_headers = dict(headers or {})
    if request_id:
        all_headers[REQUEST_ID_HEADER] = request_id
    return JSONResponse(status_code=status_code, content=body, headers=all_headers)


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    # The offending input values are left out on purpose: they may be secrets (a signature, a
    # key) and the caller already has them.
    problems = [
        FieldProblem(field=_field_path(err.get("loc", ())), message=err["msg"], type=err["type"])
        for err in exc.errors()
    ]
    summary = "; ".join(f"{p.field}: {p.message}" for p in problems)
    return error_response(
        422,
        "validation_error",
        f"Invalid request: {summary}",
        hint="Fix the listed fields; the API schema is at /docs.",
        errors=problems,
    )


def _unparsable_body_response(cause: BaseException) -> JSONResponse:
    # FastAPI answers a JSON body that does not parse with a 422 `json_invalid`, except when
    # the parser fails with something other than JSONDecodeError (bytes that are not UTF-8,
    # nesting too deep for the decoder): then it raises a bare 400 "There was an error parsing
    # the body". Both are the same client mistake and get the same status and shape here.
    reason = "it is not UTF-8" if isinstance(cause, UnicodeDecodeError) else "it does not parse"
    problem = FieldProblem(
        field="body", message=f"The body is not valid JSON: {reason}", type="json_invalid"
    )
    return error_response(
        422,
        "validation_error",
        f"Invalid request: body: {problem.message}",
        hint="Send the body as UTF-8 encoded JSON with Content-Type: application/json.",
        errors=[problem],
    )


def _http_exception_response(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
        return _unparsable_body_response(exc.__cause__)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    hint = None
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No resource at {request.method} {request.url.path}"
        hint = "Check the path; the available endpoints are listed at /docs."
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("allow") or (exc.headers or {}).get("Allow")
        detail = f"{request.method} is not allowed on {request.url.path}"
        hint = f"Use one of: {allowed}." if allowed else None
    return error_response(exc.status_code, code, detail, hint=hint, headers=exc.headers)


def render_unhandled(request: Request, exc: BaseException) -> JSONResponse:
    """Log a bug with its traceback and request id; tell the caller nothing about it."""
    logger.error(
        "unhandled %s on %s %s",
        type(exc).__name__,
        request.method,
        request.url.path,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return error_response(
        500,
        "internal_error",
        "An unexpected error occurred; it has been logged.",
        hint="Retry later; if it persists, report it with the request id.",
    )


async def handle_error(request: Request, exc: Exception) -> JSONResponse:
    """The one exception handler: every error response of the API goes through here."""
    if isinstance(exc, CredaggError):
        if exc.status_code >= 500:
            logger.warning("%s: %s", exc.code, exc.detail, extra={"error_code": exc.code})
        return error_response(
            exc.status_code, exc.code, exc.detail, hint=exc.hint, headers=exc.headers
        )
    if isinstance(exc, RequestValidationError):
        return _validation_response(exc)
    if isinstance(exc, StarletteHTTPException):
        return _http_exception_response(request, exc)
    return render_unhandled(request, exc)


def install_exception_handlers(app: FastAPI) -> None:
    """Route FastAPI's and our errors through `handle_error`.

    Errors no handler claims propagate to `RequestContextMiddleware`, which calls
    `render_unhandled` while the request id is still in context (Starlette's own `Exception`
    handler runs outside every user middleware, where it is not).
    """
    app.add_exception_handler(CredaggError, handle_error)
    app.add_exception_handler(RequestValidationError, handle_error)
    app.add_exception_handler(StarletteHTTPException, handle_error)
    _document_validation_errors(app)


_FASTAPI_422 = "#/components/schemas/HTTPValidationError"
_FASTAPI_422_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _document_validation_errors(app: FastAPI) -> None:
    """Make the OpenAPI document describe the 422 body `handle_error` actually sends.

    FastAPI documents its own validation body (`HTTPValidationError`, `detail` as a list) on
    every route with parameters that does not declare a 422 itself; our handler answers with
    `ErrorBody` instead, so clients generated from the document, and schema-driven tests,
    would expect the wrong shape. The generated document is rewritten once, when first built.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = build()
        replaced = False
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                response = operation.get("responses", {}).get("422")
                content = (response or {}).get("content", {}).get("application/json", {})
                if content.get("schema", {}).get("$ref") == _FASTAPI_422:
                    content["schema"] = {"$ref": "#/components/schemas/ErrorBody"}
                    response["description"] = (
                        "`validation_error`: the request does not match the schema; `errors` "
                        "lists each field."
                    )
                    replaced = True
        if replaced:
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for name in _FASTAPI_422_SCHEMAS:
                schemas.pop(name, None)
            for model in (ErrorBody, FieldProblem):
                schemas.setdefault(model.__name__, _component(model))
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _component(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")


def error_responses(
    *errors: type[CredaggError], validation: bool = False
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route: one entry per status, listing the error codes.

    `validation=True` documents FastAPI's 422 with our body instead of its default schema.
    """
    by_status: dict[int, list[type[CredaggError]]] = defaultdict(list)
    for error in errors:
        by_status[error.status_code].append(error)
    responses: dict[int | str, dict[str, Any]] = {}
    for status, classes in sorted(by_status.items()):
        lines = [f"`{cls.code}`: {_first_line(cls.__doc__)}" for cls in classes]
        responses[status] = {"model": ErrorBody, "description": "; ".join(lines)}
    if validation:
        described = "`validation_error`: the request does not match the schema; `errors` lists "
        described += "each field."
        existing = responses.get(422)
        if existing:
            described = f"{existing['description']}; {described}"
        responses[422] = {"model": ErrorBody, "description": described}
    return responses


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if doc and doc.strip() else ""
