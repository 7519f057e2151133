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
import re
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


#: Deeper JSON than any of our request schemas needs (they nest a few levels), and far below
#: what the C decoder can take before it overflows the thread's stack (see `JsonNestingGuard`).
MAX_JSON_DEPTH = 64

# A JSON string (escapes included) or one bracket: brackets inside strings are not structure.
_JSON_STRUCTURE = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def json_nesting_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `body`, read as JSON, opens more than `limit` arrays/objects inside each other.

    Cheap on ordinary bodies (two C-speed counts); the exact scan runs only when the body holds
    more brackets than the limit. Malformed JSON may be over-counted, never under-counted.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for match in _JSON_STRUCTURE.finditer(body):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


class JsonNestingGuard:
    """Answer a request whose JSON body nests deeper than `MAX_JSON_DEPTH` with a 422.

    `py_ecc` (imported through web3/eth-account) raises the interpreter's recursion limit to
    100000 on import, so `json.loads` of a ~200 KB body of nested brackets recurses in C until
    the process segfaults: one request would kill the API worker. The body is buffered (the
    route reads it whole anyway) and replayed to the app when it is within the limit.
    """

    def __init__(self, app: ASGIApp, *, max_depth: int = MAX_JSON_DEPTH) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if json_nesting_exceeds(body, self.max_depth):
            problem = FieldProblem(
                field="body",
                message=f"JSON nests deeper than {self.max_depth} levels",
                type="json_too_deep",
            )
            response = error_response(
                422,
                "validation_error",
                f"Invalid request: body: {problem.message}",
                hint="Send the document the operation's schema describes; none nests this deep.",
                errors=[problem],
            )
            await response(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def install_exception_handlers(app: FastAPI) -> None:
    """Route FastAPI's and our errors through `handle_error`, and keep the document honest.

    Errors no handler claims propagate to `RequestContextMiddleware`, which calls
    `render_unhandled` while the request id is still in context (Starlette's own `Exception`
    handler runs outside every user middleware, where it is not). `JsonNestingGuard` turns the
    one body the JSON parser cannot survive into a 422 before the route parses it.
    """
    app.add_exception_handler(CredaggError, handle_error)
    app.add_exception_handler(RequestValidationError, handle_error)
    app.add_exception_handler(StarletteHTTPException, handle_error)
    app.add_middleware(JsonNestingGuard)
    _document_validation_errors(app)


_FASTAPI_422 = "#/components/schemas/HTTPValidationError"
_FASTAPI_422_SCHEMAS = ("HTTPValidationError", "ValidationError")
_VALIDATION_DESCRIPTION = (
    "`validation_error`: the request does not match the schema; `errors` lists each field."
)


def _document_validation_errors(app: FastAPI) -> None:
    """Make the OpenAPI document describe the 422 body `handle_error` actually sends.

    FastAPI documents its own validation body (`HTTPValidationError`, `detail` as a list) on
    every route with inputs that does not declare a 422 itself, and nothing about validation on
    routes that declare a 422 for their own errors. Our handler answers every validation failure
    with `ErrorBody`, so each operation with parameters or a body (or one `JsonNestingGuard`
    may refuse) documents exactly that. The generated document is rewritten once, when built.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = build()
        for operations in document.get("paths", {}).values():
            for method, operation in operations.items():
                # Any method but these may carry a body, which JsonNestingGuard may refuse.
                takes_input = method not in ("get", "head", "options")
                if takes_input or "parameters" in operation or "requestBody" in operation:
                    _document_422(operation.setdefault("responses", {}))
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for name in _FASTAPI_422_SCHEMAS:
            schemas.pop(name, None)
        for model in (ErrorBody, FieldProblem):
            schemas.setdefault(model.__name__, _component(model))
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _document_422(responses: dict[str, Any]) -> None:
    response = responses.get("422")
    schema = (response or {}).get("content", {}).get("application/json", {}).get("schema", {})
    if response is None or schema.get("$ref") == _FASTAPI_422:
        response = responses["422"] = {"description": _VALIDATION_DESCRIPTION}
    elif "`validation_error`" not in response.get("description", ""):
        response["description"] = f"{response['description']}; {_VALIDATION_DESCRIPTION}"
    response["content"] = {
        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
    }


def _component(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(
        ref_template="#/components/schemas/{model}", mode="serialization"
    )


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
