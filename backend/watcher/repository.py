"""All SQL of the watcher. Built from the session; never commits (the caller's unit of work)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import delete, insert, select, text
from sqlalchemy.orm import Session

from backend.kit.columns import utcnow
from backend.kit.locks import lock_key
from backend.watcher.bulk import insert_tuples
from backend.watcher.models import WatcherBlock, WatcherCursor, WatcherLog, WatcherTarget
from backend.watcher.projections import LOG_COLUMNS, RawLogRow, raw_rows
from chain_adapters.base import Block, Log


class WatcherRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- the writer lock ---------------------------------------------------------------------

    def try_lock_chain(self, chain_id: int) -> bool:
        """Become the one writer of `chain_id` for this transaction, or learn at once we are not.

        PostgreSQL: `pg_try_advisory_xact_lock`, released at commit/rollback and when the server
        drops the connection of a killed worker. SQLite: every transaction starts with
        `BEGIN IMMEDIATE` (backend.db), so the first statement already holds the database's only
        write lock until commit, and the OS releases it if the process dies: writers are
        serialised and the second one re-reads the cursor the first one committed.
        """
        if self.session.get_bind().dialect.name != "postgresql":
            self.session.execute(select(WatcherCursor.chain_id).limit(1))  # takes the lock
            return True
        key = lock_key(f"watcher:{chain_id}")
        return bool(
            self.session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key})
        )

    # -- cursor ------------------------------------------------------------------------------

    def cursor(self, chain_id: int) -> WatcherCursor | None:
        return self.session.get(WatcherCursor, chain_id, populate_existing=True)

    def all_cursors(self) -> list[WatcherCursor]:
        return list(self.session.scalars(select(WatcherCursor).order_by(WatcherCursor.chain_id)))

    def add_cursor(self, cursor: WatcherCursor) -> WatcherCursor:
        self.session.add(cursor)
        self.session.flush()
        return cursor

    # -- targets (the watch list whose history is stored) ---------------------------------------

    def targets(self, chain_id: int) -> set[str]:
        return set(
            self.session.scalars(
                select(WatcherTarget.address).where(WatcherTarget.chain_id == chain_id)
            )
        )

    def add_targets(self, chain_id: int, history: dict[str, int], *, since_block: int) -> None:
        """Record addresses (lower-case) with the number of earlier logs backfilled for each."""
        if history:
            now = utcnow()
            self.session.execute(
                insert(WatcherTarget),
                [
                    {
                        "chain_id": chain_id,
                        "address": address,
                        "since_block": since_block,
                        "history_logs": logs,
                        "added_at": now,
                    }
                    for address, logs in sorted(history.items())
                ],
            )

    # -- headers -----------------------------------------------------------------------------

    def add_headers(self, chain_id: int, blocks: Sequence[Block]) -> None:
        if blocks:
            self.session.execute(
                insert(WatcherBlock),
                [
                    {
                        "chain_id": chain_id,
                        "number": b.number,
                        "hash": b.hash,
                        "parent_hash": b.parent_hash,
                    }
                    for b in blocks
                ],
            )

    def headers_desc(self, chain_id: int, *, at_most: int) -> Iterator[WatcherBlock]:
        """Stored headers from `at_most` downwards (the reorg walk-back)."""
        yield from self.session.scalars(
            select(WatcherBlock)
            .where(WatcherBlock.chain_id == chain_id, WatcherBlock.number <= at_most)
            .order_by(WatcherBlock.number.desc())
        )

    def prune_headers(self, chain_id: int, *, below: int) -> None:
        """Forget headers under `below` (final blocks cannot be reorganised away)."""
        self.session.execute(
            delete(WatcherBlock).where(
                WatcherBlock.chain_id == chain_id, WatcherBlock.number < below
            )
        )

    # -- logs --------------------------------------------------------------------------------

    def add_logs(self, chain_id: int, logs: Sequence[Log]) -> list[RawLogRow]:
        """Store `logs` (in the order given) and return their rows."""
        rows = raw_rows(chain_id, logs)
        self.add_rows(rows)
        return rows

    def add_rows(self, rows: Sequence[RawLogRow]) -> None:
        """Store rows built by `raw_rows` (COPY on PostgreSQL)."""
        insert_tuples(self.session, WatcherLog.__table__, LOG_COLUMNS, rows, binary=True)

    def logs_between(self, chain_id: int, first: int, last: int) -> list[RawLogRow]:
        """Stored logs of blocks first..last, in chain order."""
        table = WatcherLog.__table__
        result = self.session.execute(
            select(*(table.c[name] for name in LOG_COLUMNS))
            .where(
                table.c.chain_id == chain_id,
                table.c.block_number >= first,
                table.c.block_number <= last,
            )
            .order_by(table.c.block_number, table.c.log_index)
        )
        return [RawLogRow._make(row) for row in result]

    def delete_after(self, chain_id: int, number: int) -> int:
        """Drop headers and logs above `number`; effect rows go with their logs (CASCADE)."""
        deleted = self.session.execute(
            delete(WatcherLog).where(
                WatcherLog.chain_id == chain_id, WatcherLog.block_number > number
            )
        )
        self.session.execute(
            delete(WatcherBlock).where(
                WatcherBlock.chain_id == chain_id, WatcherBlock.number > number
            )
        )
        return int(deleted.rowcount or 0)  # type: ignore[attr-defined]
