"""JSON structured logging on top of stdlib `logging`.

One JSON object per line with `ts`, `level`, `logger`, `msg`, `request_id` and whatever the call
passed in `extra=`. Log shippers parse it without regexes, and tests can assert on fields.

Secrets never reach the output: values under secret-looking keys are replaced, passwords inside
URLs are masked, and settings hold secrets as `SecretStr`, whose `str()` is already masked.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import IO, Any

from backend.observability.context import get_request_id

REDACTED = "[redacted]"
_SECRET_KEY = re.compile(
    r"(secret|passw(or)?d|token|authori[sz]ation|api[_-]?key|private[_-]?key|signing[_-]?key|"
    r"cookie|mnemonic|seed)",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@/\s]+@")
_RESERVED = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_MAX_DEPTH = 4


def redact_text(text: str) -> str:
    """Mask the password part of any URL inside `text`."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def redact(key: str, value: Any, depth: int = 0) -> Any:
    """Return `value` with secrets masked, recursing into mappings and sequences."""
    if _SECRET_KEY.search(key):
        return REDACTED
    if depth >= _MAX_DEPTH:
        return repr(value)
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {str(k): redact(str(k), v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(key, item, depth + 1) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact_text(str(value))


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact_text(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or get_request_id(),
        }
        for key, value in record.__dict__.items():
            if key in _RESERVED or key.startswith("_") or key in payload:
                continue
            payload[key] = redact(key, value)
        if record.exc_info and record.exc_info[0] is not None:
            payload["exc_type"] = record.exc_info[0].__name__
            payload["exc"] = redact_text(self.formatException(record.exc_info))
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return json.dumps(payload, ensure_ascii=False, default=str)


class _CredaggHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marker type, so `configure_logging` can replace its own handler and no one else's."""


def configure_logging(
    level: str = "INFO",
    *,
    stream: IO[str] | None = None,
    filters: Sequence[logging.Filter] = (),
) -> logging.Handler:
    """Send every log record of the process to `stream` (stderr) as JSON lines.

    Idempotent: calling it again replaces the handler it installed before and leaves handlers
    added by others (pytest's log capture, for instance) in place. Uvicorn's loggers are routed
    through the root logger, and its access log is silenced because the request middleware writes
    a structured access line with the route template, status and request id. `filters` add
    context to every record (the worker adds the running task's id and name). Returns the
    handler, so a caller that only borrows the configuration (a test) can remove it again.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _CredaggHandler):
            root.removeHandler(handler)
    handler = _CredaggHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    for log_filter in filters:
        handler.addFilter(log_filter)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "alembic"):
        child = logging.getLogger(name)
        child.handlers.clear()
        child.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.captureWarnings(True)
    return handler
