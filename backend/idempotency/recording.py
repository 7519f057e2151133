"""Marking a claim in the same transaction as the request's effects.

The response cannot be stored in the request's transaction (`backend.db.get_db_session` commits
before the response body exists), but the fact that the request's changes committed can: the
middleware publishes its claim in a context variable for the duration of the request, and a
`before_commit` listener on the app's session factory writes `effects_committed_at` on the
claim's row inside whichever request transaction commits. Then:

* the process dies after the commit but before the response is stored: the claim is never taken
  over and run again; a retry is told `idempotency_outcome_unknown` instead of doubling a loan;
* the request answers 5xx after its commit (a streamed body that breaks, a 504 racing a
  commit): the key is not freed for a re-run, for the same reason.

Context variables follow the request into the threadpool where sync dependencies commit, and
each request runs in its own task, so concurrent requests never see each other's claim. The
middleware's own bookkeeping sessions opt out through `session.info`.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

from sqlalchemy import event, update
from sqlalchemy.orm import Session

from backend.db import SessionFactory
from backend.idempotency.models import IdempotencyKey
from backend.idempotency.service import Claim
from backend.kit.columns import utcnow

INTERNAL = "idempotency_internal"

_current_claim: ContextVar[Claim | None] = ContextVar("idempotency_claim", default=None)


def publish(claim: Claim) -> Token[Claim | None]:
    return _current_claim.set(claim)


def withdraw(token: Token[Claim | None]) -> None:
    _current_claim.reset(token)


def _mark_effects_committed(session: Session) -> None:
    claim = _current_claim.get()
    if claim is None or session.info.get(INTERNAL):
        return
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == claim.row_id, IdempotencyKey.owner == claim.owner)
        .values(effects_committed_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def install(session_factory: SessionFactory) -> None:
    """Listen on `session_factory`'s sessions (once per factory)."""
    if not event.contains(session_factory, "before_commit", _mark_effects_committed):
        event.listen(session_factory, "before_commit", _mark_effects_committed)


def internal(session: Session) -> Any:
    """Mark a bookkeeping session of the middleware itself (never marks a claim)."""
    session.info[INTERNAL] = True
    return session
