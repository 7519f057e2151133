"""Celery tasks of the idempotency store: `idempotency.purge_expired` (for beat; idempotent)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from backend.idempotency.service import purge_expired as purge
from backend.kit.columns import utcnow
from backend.worker import task_session

#: Rows deleted per task run; a backlog drains over successive beat ticks, in short transactions.
PURGE_BATCH = 5000


@shared_task(name="idempotency.purge_expired", bind=True)
def purge_expired(self: Any) -> dict[str, int]:
    """Delete keys past their `CREDAGG_IDEMPOTENCY_TTL_SECONDS`. Expired keys are already
    ignored (and replaced on reuse); this only bounds the table's size. Not retried: the next
    beat tick is the retry."""
    with task_session(self.app) as session:
        return {"deleted": purge(session, now=utcnow(), limit=PURGE_BATCH)}
