"""`IdempotencyMiddleware`: `Idempotency-Key` on every POST of every router, automatically.

Pure ASGI. For a POST carrying the header it
1. validates the key (400 `invalid_idempotency_key`), reads the body and fingerprints the request
   (SHA-256 of method, path, query and canonical body);
2. scopes the key by the caller (`backend.ratelimit.caller`: the actor, else the client IP), so
   two tenants' keys never collide and nobody can replay another's response;
3. claims the key in a transaction of its own (`service.claim`): a replay is answered from the
   store with `Idempotent-Replayed: true`; a running duplicate gets 409; a different request
   under the same key gets 422;
4. runs the request, buffering the response, and stores it before sending it, so a client that
   has seen a response can always have it replayed. A 5xx or an exception frees the key instead
   (the client may retry) unless the request's changes committed (`recording`): such a key is
   kept and answers `idempotency_outcome_unknown`. Storing is shielded from cancellation.

It sits inside the audit and CORS middlewares (its answers are audited and carry CORS headers)
and outside the timeout (it sees a 504 as a 5xx and frees the key).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import anyio
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.config import Settings
from backend.db import SessionFactory, session_scope
from backend.exceptions import CredaggError, error_response
from backend.idempotency import recording, service
from backend.idempotency.service import HEADER, REPLAYED_HEADER, Claim, StoredResponse
from backend.kit.columns import utcnow
from backend.kit.crypto import FieldCipher
from backend.ratelimit.caller import caller_of

logger = logging.getLogger("credagg.idempotency")

_CLAIM_ATTEMPTS = 3


class IdempotencyMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        session_factory: SessionFactory,
        cipher: FieldCipher | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.session_factory = session_factory
        self.cipher = cipher or FieldCipher.from_spec(
            settings.data_encryption_keys.get_secret_value(), settings.data_encryption_active_key
        )
        self.ttl = timedelta(seconds=settings.idempotency_ttl_seconds)
        # A live request never holds a claim past the request timeout (it gets a 504 and the
        # claim is freed); the lease only matters when the holder died.
        self.lease = timedelta(seconds=2 * settings.request_timeout + 10)
        recording.install(session_factory)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        raw_key = headers.get(HEADER)
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        try:
            key = service.check_key(raw_key)
        except CredaggError as exc:
            await _send_error(exc, scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client hung up before sending its body: nothing to run or answer
        request_fingerprint = service.fingerprint(
            "POST", scope["path"], scope.get("query_string", b""), body, headers.get("content-type")
        )
        caller = await caller_of(scope, self.settings, self.session_factory)
        try:
            outcome = await anyio.to_thread.run_sync(
                self._claim, caller.scope, key, request_fingerprint
            )
        except CredaggError as exc:
            await _send_error(exc, scope, receive, send)
            return
        if isinstance(outcome, StoredResponse):
            await _send_stored(outcome, send, replayed=True)
            return
        await self._run(outcome, body, scope, receive, send)

    def _claim(
        self, scope_name: str, key: str, request_fingerprint: bytes
    ) -> Claim | StoredResponse:
        for attempt in range(_CLAIM_ATTEMPTS):
            try:
                with session_scope(self.session_factory) as session:
                    return service.claim(
                        recording.internal(session),
                        self.cipher,
                        scope=scope_name,
                        key=key,
                        fingerprint=request_fingerprint,
                        now=utcnow(),
                        lease=self.lease,
                        ttl=self.ttl,
                    )
            except IntegrityError:
                # A concurrent first claim of the same key won the INSERT; look again.
                if attempt == _CLAIM_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _run(
        self, held: Claim, body: bytes, scope: Scope, receive: Receive, send: Send
    ) -> None:
        body_sent = False

        async def replay_body() -> Message:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        start: Message | None = None
        chunks: list[bytes] = []

        async def buffer(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        published = recording.publish(held)
        try:
            await self.app(scope, replay_body, buffer)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._in_thread(_release, held)
            raise
        finally:
            recording.withdraw(published)
        if start is None:  # the app returned without answering; nothing to store or send
            with anyio.CancelScope(shield=True):
                await self._in_thread(_release, held)
            return
        response = StoredResponse(
            status=int(start["status"]),
            headers=service.storable_headers(list(start.get("headers", []))),
            body=b"".join(chunks),
        )
        with anyio.CancelScope(shield=True):
            if response.status >= 500:
                await self._in_thread(_release, held)
            else:
                await self._in_thread(
                    lambda session, claim: service.complete(session, self.cipher, claim, response),
                    held,
                )
        await send({**start, "headers": list(start.get("headers", []))})
        await send({"type": "http.response.body", "body": response.body, "more_body": False})

    async def _in_thread(self, work: Callable[..., object], held: Claim) -> None:
        def run() -> None:
            try:
                with session_scope(self.session_factory) as session:
                    work(recording.internal(session), held)
            except Exception:
                # The response still goes out; the claim stays until its lease ends, and a
                # retry meanwhile is told the request is in progress (never run twice).
                logger.exception("could not settle idempotency key row %s", held.row_id)

        await anyio.to_thread.run_sync(run)


def _release(session: Session, held: Claim) -> None:
    service.release(session, held, now=utcnow())


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None if the client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_stored(stored: StoredResponse, send: Send, *, replayed: bool) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in stored.headers]
    headers.append((b"content-length", str(len(stored.body)).encode()))
    if replayed:
        headers.append((REPLAYED_HEADER.lower().encode(), b"true"))
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body, "more_body": False})


async def _send_error(exc: CredaggError, scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(
        exc.status_code, exc.code, exc.detail, hint=exc.hint, headers=exc.headers
    )
    await response(scope, receive, send)
