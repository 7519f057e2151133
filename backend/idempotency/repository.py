"""All SQL of the idempotency store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from backend.idempotency.models import IdempotencyKey, IdempotencyState
from backend.kit.repository import RepositoryBase


class IdempotencyRepository(RepositoryBase[IdempotencyKey]):
    model = IdempotencyKey

    def get_for_update(self, scope: str, key: str) -> IdempotencyKey | None:
        """The row of (scope, key), locked until the transaction ends (PostgreSQL).

        SQLite takes its write lock at BEGIN (see `backend.db`), which serialises claims there.
        """
        statement = (
            select(IdempotencyKey)
            .where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
            .with_for_update()
        )
        return self.get_one_or_none(statement)

    def delete_row(self, row: IdempotencyKey) -> None:
        self.session.delete(row)
        self.session.flush()

    def complete(
        self,
        row_id: int,
        owner: str,
        *,
        status: int,
        headers: list[Any],
        body: str,
    ) -> bool:
        """Store the response if `owner` still holds the claim; False if it lost it."""
        result = self.session.execute(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.id == row_id,
                IdempotencyKey.owner == owner,
                IdempotencyKey.state == IdempotencyState.IN_PROGRESS.value,
            )
            .values(
                state=IdempotencyState.COMPLETED.value,
                response_status=status,
                response_headers=headers,
                response_body=body,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    def release(self, row_id: int, owner: str) -> bool:
        """Delete a claim still held by `owner` whose request committed nothing."""
        result = self.session.execute(
            delete(IdempotencyKey)
            .where(
                IdempotencyKey.id == row_id,
                IdempotencyKey.owner == owner,
                IdempotencyKey.state == IdempotencyState.IN_PROGRESS.value,
                IdempotencyKey.effects_committed_at.is_(None),
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    def end_lease(self, row_id: int, owner: str, now: datetime) -> None:
        """Let go of a claim whose request committed but failed to answer (kept, not re-run)."""
        self.session.execute(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.id == row_id,
                IdempotencyKey.owner == owner,
                IdempotencyKey.state == IdempotencyState.IN_PROGRESS.value,
            )
            .values(locked_until=now)
            .execution_options(synchronize_session=False)
        )

    def delete_expired(self, now: datetime, *, limit: int) -> int:
        ids = (
            select(IdempotencyKey.id)
            .where(IdempotencyKey.expires_at <= now)
            .order_by(IdempotencyKey.id)
            .limit(limit)
        )
        doomed = list(self.session.execute(ids).scalars())
        if not doomed:
            return 0
        self.session.execute(
            delete(IdempotencyKey)
            .where(IdempotencyKey.id.in_(doomed), IdempotencyKey.expires_at <= now)
            .execution_options(synchronize_session=False)
        )
        return len(doomed)
