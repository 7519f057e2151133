"""`audit.checkpoint` puts the audit head into the receipt log, and only when it moved."""

from __future__ import annotations

from typing import Any

from backend.audit.chain import hex_hash
from backend.audit.repository import CHECKPOINT_SUBJECT, AuditCheckpointReceiptRepository
from backend.audit.service import current_head
from backend.config import Settings
from backend.db import SessionFactory, session_scope
from backend.receipts.models import ReceiptKind
from backend.worker import beat_schedule, create_celery_app
from tests.audit.conftest import create_entries


def run_task(settings: Settings) -> dict[str, Any]:
    """Run `audit.checkpoint` in-process through the real Celery app (its own session, commit)."""
    app = create_celery_app(settings)
    try:
        import backend.audit.tasks  # noqa: F401  # registers the shared task

        result = app.tasks["audit.checkpoint"].apply()
        answer: dict[str, Any] = result.get(disable_sync_subtasks=False)
        return answer
    finally:
        app.dispose_engine()
        app.close()


def checkpoint_receipts(factory: SessionFactory) -> list[dict[str, Any]]:
    with session_scope(factory) as session:
        return [
            {
                "kind": r.kind,
                "tenant": r.tenant,
                "subject": r.subject,
                "payload": r.payload,
                "id": str(r.id),
            }
            for r in AuditCheckpointReceiptRepository(session).all()
        ]


def test_the_head_is_receipted_once_per_move(
    audit_settings: Settings, session_factory: SessionFactory
) -> None:
    assert run_task(audit_settings) == {"issued": False}  # an empty log has nothing to receipt
    assert checkpoint_receipts(session_factory) == []

    create_entries(session_factory, 3)
    first = run_task(audit_settings)
    with session_scope(session_factory) as session:
        head = current_head(session)
    assert first["issued"] is True
    assert (first["seq"], first["head"]) == (3, hex_hash(head.entry_hash))
    [receipt] = checkpoint_receipts(session_factory)
    assert receipt == {
        "kind": ReceiptKind.AUDIT_CHECKPOINT.value,
        "tenant": "system",
        "subject": CHECKPOINT_SUBJECT,
        "payload": {"seq": 3, "head": hex_hash(head.entry_hash)},
        "id": first["receipt_id"],
    }

    assert run_task(audit_settings) == {"issued": False}  # the head did not move
    assert len(checkpoint_receipts(session_factory)) == 1

    create_entries(session_factory, 1)
    second = run_task(audit_settings)
    assert (second["issued"], second["seq"]) == (True, 4)
    assert [r["payload"]["seq"] for r in checkpoint_receipts(session_factory)] == [3, 4]


def test_beat_runs_the_checkpoint_every_configured_interval(audit_settings: Settings) -> None:
    settings = audit_settings.model_copy(update={"audit_checkpoint_interval": 42.0})
    assert beat_schedule(settings)["audit-checkpoint"] == {
        "task": "audit.checkpoint",
        "schedule": 42.0,
    }
