"""How a request becomes exactly one audit entry, whichever way it ends.

Every request with a non-safe method (POST, PUT, PATCH, DELETE, anything not GET/HEAD/OPTIONS/
TRACE) is audited; endpoint authors do nothing. Two writers can produce its entry:

* the request's own transaction (`backend.db.get_db_session`): when the endpoint returns, the
  entry is appended just before the commit, so the change and its entry commit together or not
  at all. Its status is the one the endpoint set on the injected `Response`, else the route's
  declared `status_code`, else 200 (an endpoint that returns a `Response` object of its own
  with another status is recorded with the declared one: the transaction's outcome is "done").
* `AuditMiddleware`, when the response is complete and no transaction committed an entry: the
  endpoint raised (the transaction rolled back), the commit failed, or the request never opened
  a session. It appends the entry, with the status actually sent, in a transaction of its own.

An `AuditSlot` in the request's scope decides between them. The two can race only when the
timeout middleware answers 504 while the endpoint's thread is still running: if the middleware
closes the slot first, the late transaction is rolled back (`RequestAbandoned`) instead of
committing a change the client was told failed; if the transaction is committing, the
middleware waits for its outcome.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from enum import Enum
from typing import Any

from fastapi import Request, Response
from sqlalchemy.orm import Session
from starlette.types import Scope

from backend.audit.exceptions import RequestAbandoned
from backend.audit.service import AuditRecord, append
from backend.observability.context import get_request_id
from backend.observability.middleware import route_template

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
SLOT_KEY = "audit_slot"
#: Set in the request's state once its entry committed with `commit_with_entry`.
COMMITTED_KEY = "audit_entry_committed"
ANONYMOUS = "anonymous"
_ACTOR_MAX = 255
_ACTION_MAX = 255


def is_state_changing(method: str) -> bool:
    return method.upper() not in SAFE_METHODS


def _clean(text: str, limit: int | None = None) -> str:
    """Well-formed Unicode (JCS refuses lone surrogates), clipped to the column."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def actor_of(state: Mapping[str, Any]) -> str:
    """`principal.actor` when the auth layer set one on `request.state`, else "anonymous"."""
    actor = getattr(state.get("principal"), "actor", None)
    return _clean(actor, _ACTOR_MAX) if isinstance(actor, str) and actor else ANONYMOUS


def record_for(scope: Scope, status: int) -> AuditRecord:
    """The entry of the request in `scope`, which ended with `status`."""
    state: Mapping[str, Any] = scope.get("state") or {}
    request_id = get_request_id() or state.get("request_id")
    return AuditRecord(
        actor=actor_of(state),
        action=_clean(f"{scope['method']} {route_template(scope)}", _ACTION_MAX),
        resource=_clean(str(scope.get("path", ""))),
        request_id=str(request_id) if request_id else None,
        status=status,
    )


class _SlotState(Enum):
    PENDING = "pending"  # nobody has written the entry
    COMMITTING = "committing"  # a transaction holding the entry is committing
    COMMITTED = "committed"  # the entry is durable
    CLOSED = "closed"  # the middleware wrote (or is writing) the entry


class AuditSlot:
    """Which of the request's transaction and the middleware writes its one entry."""

    def __init__(self) -> None:
        self._state = _SlotState.PENDING
        self._changed = threading.Condition()

    def begin_commit(self) -> bool:
        """A transaction is about to append and commit: True to go on, False if already done.

        Raises `RequestAbandoned` if the middleware already answered and audited the request.
        """
        with self._changed:
            self._changed.wait_for(lambda: self._state is not _SlotState.COMMITTING)
            if self._state is _SlotState.CLOSED:
                raise RequestAbandoned(
                    "the request was already answered and audited as failed (timed out?); "
                    "its work is rolled back",
                    hint="Retry the request.",
                )
            if self._state is _SlotState.COMMITTED:
                return False  # a second session in the same request: one entry per request
            self._state = _SlotState.COMMITTING
            return True

    def settle(self, *, committed: bool) -> None:
        with self._changed:
            if self._state is _SlotState.COMMITTING:
                self._state = _SlotState.COMMITTED if committed else _SlotState.PENDING
                self._changed.notify_all()

    @property
    def committed(self) -> bool:
        """Whether the request's transaction committed its entry (final: nothing changes a
        committed slot), read without waiting."""
        with self._changed:
            return self._state is _SlotState.COMMITTED

    def close(self) -> bool:
        """The response is complete: True if the caller (the middleware) must write the entry."""
        with self._changed:
            self._changed.wait_for(lambda: self._state is not _SlotState.COMMITTING)
            if self._state is _SlotState.COMMITTED:
                return False
            self._state = _SlotState.CLOSED
            return True


class RequestAudit:
    """The in-transaction half, used by `get_db_session`:

    audit = RequestAudit(request, response)
    with audit.transaction(), session_scope(factory) as session:
        yield session
        audit.append_before_commit(session)
    """

    def __init__(self, request: Request, response: Response) -> None:
        self.request = request
        self.response = response
        self._began = False

    def _slot(self) -> AuditSlot | None:
        slot = self.request.scope.get("state", {}).get(SLOT_KEY)
        return slot if isinstance(slot, AuditSlot) else None

    def _status(self) -> int:
        declared = getattr(self.request.scope.get("route"), "status_code", None)
        return int(self.response.status_code or declared or 200)

    def append_before_commit(self, session: Session) -> None:
        """Append this request's entry in `session`'s transaction (non-safe methods only)."""
        if not is_state_changing(self.request.method):
            return
        if self.request.scope.get("state", {}).get(COMMITTED_KEY):
            return  # the endpoint committed its work and entry already (`commit_with_entry`)
        slot = self._slot()
        if slot is not None:
            if not slot.begin_commit():
                return
            self._began = True
        append(session, record_for(self.request.scope, self._status()))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Wraps the session's unit of work: tells the slot whether the entry committed."""
        try:
            yield
        except BaseException:
            self._settle(committed=False)
            raise
        self._settle(committed=True)

    def _settle(self, *, committed: bool) -> None:
        slot = self._slot()
        if self._began and slot is not None:
            slot.settle(committed=committed)


def commit_with_entry(request: Request, response: Response, session: Session) -> None:
    """Append the request's entry and commit `session` now, in the caller's thread.

    For an endpoint whose last writes take serialising locks (the receipt log's size, the
    audit head): committing in the same thread hop as those writes holds the locks for a few
    round trips, instead of across the event-loop hops between the endpoint's return and the
    session dependency's exit, where every queued request waits behind them. The dependency
    then finds nothing left to do; a failure here rolls back and raises like its own commit.
    """
    audit = RequestAudit(request, response)
    with audit.transaction():
        try:
            audit.append_before_commit(session)
            session.commit()
        except BaseException:
            session.rollback()
            raise
    request.scope.setdefault("state", {})[COMMITTED_KEY] = True
