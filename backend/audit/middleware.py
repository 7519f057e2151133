"""`AuditMiddleware`: the entry of every state-changing request that did not commit one.

Pure ASGI (like `backend.observability.middleware`). It sits inside `RequestContextMiddleware`
(so the request id is set and an unhandled exception is still on its way to becoming a 500) and
outside `TimeoutMiddleware` (so it sees the 504 a timeout produces). See
`backend.audit.recording` for how it and the request's transaction share the work.
"""

from __future__ import annotations

import logging

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.audit.recording import SLOT_KEY, AuditSlot, is_state_changing, record_for
from backend.audit.service import append
from backend.db import SessionFactory, session_scope

logger = logging.getLogger("credagg.audit")


class AuditMiddleware:
    def __init__(self, app: ASGIApp, *, session_factory: SessionFactory) -> None:
        self.app = app
        self.session_factory = session_factory

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_state_changing(scope["method"]):
            await self.app(scope, receive, send)
            return
        slot = AuditSlot()
        scope.setdefault("state", {})[SLOT_KEY] = slot
        status = 500  # what the client gets if the app raises before responding

        async def capture_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture_status)
        finally:
            # The usual case, decided without a thread hop: the request's own transaction
            # committed the entry. Otherwise `close` may wait for a commit in flight, and the
            # entry is written here, in a thread. Shielded: a cancelled request (client gone)
            # is still a request to audit.
            if not slot.committed:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(
                        self._record_unless_committed, slot, scope, status
                    )

    def _record_unless_committed(self, slot: AuditSlot, scope: Scope, status: int) -> None:
        if not slot.close():
            return  # the request's transaction committed its entry
        record = record_for(scope, status)
        try:
            with session_scope(self.session_factory) as session:
                append(session, record)
        except Exception:
            # The response is already sent; nothing was committed for this request (its own
            # transaction, if any, rolled back). Keep the entry's content in the error log.
            logger.exception(
                "audit entry could not be written",
                extra={"audit_record": vars(record), "status": status},
            )
