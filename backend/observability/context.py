"""The request id of the code running now, for log lines and error bodies.

A contextvar (not a thread-local) so it follows the request across `await`s, and is copied into
the threads FastAPI runs sync endpoints and dependencies in.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar, Token

REQUEST_ID_HEADER = "X-Request-ID"
_request_id: ContextVar[str | None] = ContextVar("credagg_request_id", default=None)

# Accept a caller's id only if it is short and boring: it is echoed in headers and logs, so it
# must not carry newlines, quotes or megabytes.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")


def get_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> Token[str | None]:
    return _request_id.set(value)


def reset_request_id(token: Token[str | None]) -> None:
    _request_id.reset(token)


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(incoming: str | None) -> str:
    """Propagate the caller's id when it is safe to echo, else mint a new one."""
    if incoming and _SAFE_ID.match(incoming):
        return incoming
    return new_request_id()
