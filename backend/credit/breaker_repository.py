"""SQL of the circuit breakers when they are read in bulk and written in short transactions.

`BreakerRepository` (in `repository.py`) reads and claims one provider at a time inside the
caller's transaction. Under load that is the wrong shape: 20 providers are 20 look-ups, and a
write in the request's transaction holds the breaker row's lock until the whole request commits,
so every other request touching that provider waits for it. These methods read every breaker of
a request in one query and lock a row (`FOR UPDATE`, a no-op on SQLite where the transaction
already holds the write lock) only inside a short transaction of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from backend.credit.models import CircuitBreaker
from backend.credit.repository import BreakerRepository


class BulkBreakerRepository(BreakerRepository):
    def many(self, provider_ids: Iterable[int]) -> dict[int, CircuitBreaker]:
        """The breaker rows of `provider_ids` that exist (a provider with none is closed)."""
        ids = sorted(set(provider_ids))
        if not ids:
            return {}
        rows = self.session.scalars(
            select(CircuitBreaker).where(CircuitBreaker.provider_id.in_(ids))
        ).all()
        return {row.provider_id: row for row in rows}

    def locked(self, provider_id: int, *, now: datetime) -> CircuitBreaker:
        """The provider's row, created if missing, locked until this transaction ends.

        Insert-if-absent first, so two transactions creating the same row never collide on the
        primary key; then `SELECT ... FOR UPDATE`, so concurrent failure counts never lose an
        increment.
        """
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self.session.execute(
            insert(CircuitBreaker)
            .values(provider_id=provider_id, consecutive_failures=0, updated_at=now)
            .on_conflict_do_nothing(index_elements=[CircuitBreaker.provider_id])
        )
        row = self.session.scalars(
            select(CircuitBreaker)
            .where(CircuitBreaker.provider_id == provider_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        return row


def breaker_rows(session: Session, provider_ids: Iterable[int]) -> dict[int, CircuitBreaker]:
    return BulkBreakerRepository(session).many(provider_ids)
