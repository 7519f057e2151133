"""Celery tasks of the audit domain: `audit.checkpoint` (run by beat, idempotent)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import shared_task
from sqlalchemy.orm import Session

from backend.audit.chain import hex_hash
from backend.audit.service import checkpoint_head
from backend.config import Settings
from backend.receipts.service import signer_from_settings
from backend.worker import task_session


def run_checkpoint(session: Session, settings: Settings) -> dict[str, Any]:
    """Receipt the audit head unless it has not moved since the last checkpoint."""
    issued = checkpoint_head(
        session,
        signer=signer_from_settings(settings),
        max_inclusion_delay=timedelta(seconds=settings.anchor_max_age_seconds),
    )
    if issued is None:
        return {"issued": False}
    return {
        "issued": True,
        "receipt_id": str(issued.id),
        "leaf_index": issued.leaf_index,
        "seq": issued.document["payload"]["seq"],
        "head": issued.document["payload"]["head"],
        "commitment": hex_hash(issued.commitment),
    }


@shared_task(name="audit.checkpoint", bind=True)
def checkpoint(self: Any) -> dict[str, Any]:
    """Issue the audit log's head as an `audit_checkpoint` receipt (every
    `CREDAGG_AUDIT_CHECKPOINT_INTERVAL` seconds).

    Idempotent: a redelivered or overlapping run finds the head already receipted and issues
    nothing. Not retried: the next beat tick is the retry.
    """
    with task_session(self.app) as session:
        return run_checkpoint(session, self.app.settings)
