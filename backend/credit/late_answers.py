"""Answers a lender posts later (`POST /v1/provider/quotes`) instead of inline.

The fan-out opens a `pending` slot per (request, provider) before sending the webhook, with the
request's overall deadline. A lender that answers the webhook with 202 posts its quote or
decline; the POST fills the slot with one conditional UPDATE (pending and not past the
deadline), so two answers cannot both win and an answer after the deadline is refused. The
fan-out polls the slot in short transactions of its own and, when it stops waiting for any
reason, closes the slot so that a late POST gets a clear 409 rather than a silent loss.

A credit request's fan-out opens all its slots in one transaction (`SlotBatch`) and closes the
ones still pending in one more when it ends: per-slot transactions cost two thread hops and two
commits per lender (40 per request with 20 lenders), which queued on the thread pool and was
most of the fan-out's time under load. An inline answer marks its slot `inline` at that close.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable
from contextvars import ContextVar
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.credit.exceptions import CreditError
from backend.credit.models import ProviderAnswer
from backend.db import SessionFactory, session_scope
from backend.exceptions import Conflict, NotFound
from backend.kit.columns import utcnow

PENDING, QUOTE, DECLINE, INLINE, CLOSED = "pending", "quote", "decline", "inline", "closed"
#: How often the fan-out looks for a posted answer (seconds).
POLL_INTERVAL = 0.05

#: The session factory the fan-out of the current request may use for its slots (set by the
#: caller of the fan-out; tasks created inside it inherit it).
SESSIONS: ContextVar[SessionFactory | None] = ContextVar("credagg_late_sessions", default=None)
#: The slots the current request's fan-out opened in one batch (set by the caller of the
#: fan-out); a source finding one here uses its slot instead of opening and closing its own.
BATCH: ContextVar[SlotBatch | None] = ContextVar("credagg_late_batch", default=None)


class AnswerNotExpected(CreditError, NotFound):
    """No credit request with this id was sent to the calling provider."""

    code = "credit_request_not_found"


class DeadlinePassed(CreditError, Conflict):
    """The request's deadline has passed (or the fan-out stopped waiting for this lender)."""

    code = "deadline_passed"


class AlreadyAnswered(CreditError, Conflict):
    """The provider has already answered this request."""

    code = "already_answered"


class AnswerRepository:
    """All SQL about answer slots."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def open(self, request_id: str, provider_id: int, deadline: datetime) -> None:
        self.session.add(
            ProviderAnswer(
                request_id=request_id, provider_id=provider_id, kind=PENDING, deadline=deadline
            )
        )
        self.session.flush()

    def existing(self, request_id: str, provider_ids: Collection[int]) -> set[int]:
        """Which of `provider_ids` already have a slot for `request_id`."""
        if not provider_ids:
            return set()
        rows = self.session.scalars(
            select(ProviderAnswer.provider_id).where(
                ProviderAnswer.request_id == request_id,
                ProviderAnswer.provider_id.in_(provider_ids),
            )
        )
        return {int(pid) for pid in rows}

    def open_many(self, request_id: str, provider_ids: Iterable[int], deadline: datetime) -> None:
        """The pending slots in one executemany (Core: nothing is read back). A COPY was
        measured no faster for a request's ~20 rows, so it stays an INSERT."""
        now = utcnow()
        rows = [
            {
                "request_id": request_id,
                "provider_id": pid,
                "kind": PENDING,
                "deadline": deadline,
                "created_at": now,
            }
            for pid in provider_ids
        ]
        if rows:
            self.session.execute(insert(cast(Table, ProviderAnswer.__table__)), rows)

    def close_pending(
        self, request_id: str, provider_ids: Collection[int], *, kind: str, now: datetime
    ) -> None:
        """Every still-pending slot of `provider_ids` -> `kind`, in one UPDATE."""
        if not provider_ids:
            return
        self.session.execute(
            update(ProviderAnswer)
            .where(
                ProviderAnswer.request_id == request_id,
                ProviderAnswer.provider_id.in_(provider_ids),
                ProviderAnswer.kind == PENDING,
            )
            .values(kind=kind, received_at=now)
            .execution_options(synchronize_session=False)
        )

    def get(self, request_id: str, provider_id: int) -> ProviderAnswer | None:
        return self.session.scalar(
            select(ProviderAnswer).where(
                ProviderAnswer.request_id == request_id,
                ProviderAnswer.provider_id == provider_id,
            )
        )

    def fill(
        self,
        request_id: str,
        provider_id: int,
        *,
        kind: str,
        body: dict[str, Any] | None,
        now: datetime,
        before_deadline: bool = True,
    ) -> bool:
        """Pending -> `kind`, atomically; False if the slot was not pending (or is past due)."""
        condition = [
            ProviderAnswer.request_id == request_id,
            ProviderAnswer.provider_id == provider_id,
            ProviderAnswer.kind == PENDING,
        ]
        if before_deadline:
            condition.append(ProviderAnswer.deadline > now)
        result = self.session.execute(
            update(ProviderAnswer)
            .where(*condition)
            .values(kind=kind, body=body, received_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))


def submit_answer(
    session: Session,
    provider_id: int,
    request_id: str,
    *,
    kind: str,
    body: dict[str, Any],
    now: datetime | None = None,
) -> None:
    """Record `provider_id`'s quote or decline for `request_id`, or say why it cannot be."""
    now = now or utcnow()
    repo = AnswerRepository(session)
    if repo.fill(request_id, provider_id, kind=kind, body=body, now=now):
        return
    slot = repo.get(request_id, provider_id)
    if slot is None:
        raise AnswerNotExpected(
            f"credit request {request_id!r} was not sent to you",
            hint="Answer only requests your webhook received (data.request_id).",
        )
    if slot.kind not in (PENDING, CLOSED):
        raise AlreadyAnswered(
            f"you already answered credit request {request_id!r} ({slot.kind})",
            hint="Each request takes one answer per provider; it cannot be changed.",
        )
    raise DeadlinePassed(
        f"credit request {request_id!r} stopped taking answers at {slot.deadline.isoformat()}",
        hint="Post your answer before data.respond_by of the webhook (and within your "
        "timeout); the borrower has been answered without your quote.",
    )


class Slot:
    """One provider's answer slot for one request, as the fan-out sees it."""

    def __init__(self, sessions: SessionFactory, request_id: str, provider_id: int) -> None:
        self.sessions = sessions
        self.request_id = request_id
        self.provider_id = provider_id

    def _open(self, deadline: datetime) -> None:
        with session_scope(self.sessions) as session:
            AnswerRepository(session).open(self.request_id, self.provider_id, deadline)

    def _read(self) -> tuple[str, dict[str, Any] | None] | None:
        with session_scope(self.sessions) as session:
            slot = AnswerRepository(session).get(self.request_id, self.provider_id)
            return None if slot is None else (slot.kind, slot.body)

    def _close(self, kind: str) -> None:
        with session_scope(self.sessions) as session:
            AnswerRepository(session).fill(
                self.request_id,
                self.provider_id,
                kind=kind,
                body=None,
                now=utcnow(),
                before_deadline=False,
            )

    async def open(self, deadline: datetime) -> bool:
        """Open the slot; False if it exists already (the same request asked twice)."""
        try:
            await asyncio.to_thread(self._open, deadline)
        except IntegrityError:
            return False
        return True

    async def close(self, kind: str = CLOSED) -> None:
        """Stop taking answers (a pending slot becomes `kind`)."""
        await asyncio.to_thread(self._close, kind)

    async def wait(self) -> tuple[str, dict[str, Any]]:
        """The posted answer (kind, body); runs until one arrives or the caller cancels."""
        while True:
            found = await asyncio.to_thread(self._read)
            if found is not None and found[0] in (QUOTE, DECLINE) and found[1] is not None:
                return found[0], found[1]
            await asyncio.sleep(POLL_INTERVAL)

    async def settle(self) -> tuple[str, dict[str, Any]] | None:
        """Close the slot and return an answer that won the race with the close, if any."""
        await self.close()
        found = await asyncio.to_thread(self._read)
        if found is not None and found[0] in (QUOTE, DECLINE) and found[1] is not None:
            return found[0], found[1]
        return None


class SlotBatch:
    """All the slots of one request's fan-out: opened together, closed together.

    `open` runs before any webhook is sent (a lender answering 202 and posting at once finds
    its slot); `close` runs when the fan-out stops waiting, whatever the reason, and turns each
    slot still pending into `inline` (its lender answered in the response) or `closed`.
    """

    def __init__(self, sessions: SessionFactory, request_id: str) -> None:
        self.sessions = sessions
        self.request_id = request_id
        self.opened: frozenset[int] = frozenset()
        self._inline: set[int] = set()

    def open(self, provider_ids: Iterable[int], deadline: datetime) -> None:
        """Open a slot for each provider in one transaction; a slot that exists already (the
        same request asked twice) stays as it is and is not this batch's."""
        wanted = sorted(set(provider_ids))
        if not wanted:
            return
        with session_scope(self.sessions) as session:
            repo = AnswerRepository(session)
            taken = repo.existing(self.request_id, wanted)
            fresh = [pid for pid in wanted if pid not in taken]
            repo.open_many(self.request_id, fresh, deadline)
        self.opened = frozenset(fresh)

    def slot(self, provider_id: int) -> Slot | None:
        """The provider's slot if this batch opened it."""
        if provider_id not in self.opened:
            return None
        return Slot(self.sessions, self.request_id, provider_id)

    def answered_inline(self, provider_id: int) -> None:
        self._inline.add(provider_id)

    def close(self) -> None:
        """Stop taking answers for every slot of the batch (one transaction)."""
        if not self.opened:
            return
        inline = self._inline & self.opened
        now = utcnow()
        with session_scope(self.sessions) as session:
            repo = AnswerRepository(session)
            repo.close_pending(self.request_id, inline, kind=INLINE, now=now)
            repo.close_pending(self.request_id, self.opened - inline, kind=CLOSED, now=now)
