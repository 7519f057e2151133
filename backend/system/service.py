"""Logic of the system domain (no HTTP, no commit)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from backend.system.models import WorkerHeartbeat
from backend.system.repository import WorkerHeartbeatRepository


def record_heartbeat(
    session: Session, *, nonce: str, hostname: str, task_id: str | None
) -> WorkerHeartbeat:
    """Store that `hostname` executed a ping; the caller's unit of work commits it."""
    return WorkerHeartbeatRepository(session).create(
        WorkerHeartbeat(nonce=nonce, hostname=hostname, task_id=task_id)
    )
