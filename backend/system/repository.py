"""All SQL of the system domain."""

from __future__ import annotations

from backend.kit.repository import RepositoryBase
from backend.system.models import WorkerHeartbeat


class WorkerHeartbeatRepository(RepositoryBase[WorkerHeartbeat]):
    model = WorkerHeartbeat

    def get_by_nonce(self, nonce: str) -> WorkerHeartbeat | None:
        statement = (
            self.get_base_statement()
            .where(WorkerHeartbeat.nonce == nonce)
            .order_by(WorkerHeartbeat.id.desc())
            .limit(1)
        )
        return self.get_one_or_none(statement)
