"""Pure ASGI middlewares (no `BaseHTTPMiddleware`: it breaks contextvars and streaming).

`RequestContextMiddleware` is the outermost user middleware. For every HTTP request it
* takes the caller's `X-Request-ID` (if safe) or mints one, puts it in the contextvar that log
  lines and error bodies read, and echoes it on the response;
* turns an exception nothing else handled into the standard 500 body, logged with the request id
  (Starlette's own last-resort handler runs outside user middleware, where the id is gone);
* records Prometheus metrics by route *template* and writes one structured access log line.

`TimeoutMiddleware` abandons a request that runs past `CREDAGG_REQUEST_TIMEOUT` with a 504.
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.exceptions import RequestTimeout, error_response, render_unhandled
from backend.observability.context import (
    REQUEST_ID_HEADER,
    accept_request_id,
    reset_request_id,
    set_request_id,
)
from backend.observability.metrics import UNMATCHED_ROUTE, HttpMetrics

access_logger = logging.getLogger("credagg.access")


def route_template(scope: Scope) -> str:
    """`/v1/loans/{loan_id}` rather than `/v1/loans/42`: bounded label values."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(template) if template else UNMATCHED_ROUTE


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accept_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER))
        scope.setdefault("state", {})["request_id"] = request_id
        token = set_request_id(request_id)
        status = 500
        response_started = False
        started_at = time.perf_counter()
        self.metrics.in_progress.inc()

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if response_started:
                # Too late for an error body; log it and let the server drop the connection.
                render_unhandled(Request(scope), exc)
                raise
            response = render_unhandled(Request(scope), exc)
            await response(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started_at
            self.metrics.in_progress.dec()
            route = route_template(scope)
            self.metrics.observe(
                method=scope["method"], route=route, status=status, seconds=elapsed
            )
            access_logger.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            reset_request_id(token)


class TimeoutMiddleware:
    def __init__(self, app: ASGIApp, *, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        deadline = asyncio.timeout(self.timeout)
        try:
            async with deadline:
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            # Only our deadline is ours to report; a TimeoutError raised by the endpoint itself
            # is a bug or an upstream failure and goes to the generic handler.
            if not deadline.expired() or response_started:
                raise
            error = RequestTimeout(
                f"The request did not finish within {self.timeout:g} s and was abandoned.",
                hint="Retry later; if the operation has side effects, check its status first.",
            )
            response = error_response(error.status_code, error.code, error.detail, hint=error.hint)
            await response(scope, receive, send)
