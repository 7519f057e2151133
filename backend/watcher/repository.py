"""All SQL of the watcher. Built from the session; never commits (the caller's unit of work)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import delete, insert, select, text
from sqlalchemy.orm import Session

from backend.kit.locks import lock_key
from backend.watcher.bulk import bulk_insert
from backend.watcher.models import WatcherBlock, WatcherCursor, WatcherLog
from backend.watcher.projections import RawLogRow
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
        rows = [
            RawLogRow(
                chain_id=chain_id,
                block_hash=log.block_hash,
                log_index=log.log_index,
                block_number=log.block_number,
                transaction_hash=log.transaction_hash,
                address=log.address,
                topics=tuple(log.topics[:4]) + (None,) * (4 - min(len(log.topics), 4)),
                data=log.data,
            )
            for log in logs
        ]
        if rows:
            bulk_insert(
                self.session,
                WatcherLog.__table__,
                [
                    {
                        "chain_id": r.chain_id,
                        "block_hash": r.block_hash,
                        "log_index": r.log_index,
                        "block_number": r.block_number,
                        "transaction_hash": r.transaction_hash,
                        "address": r.address,
                        "topic0": r.topics[0],
                        "topic1": r.topics[1],
                        "topic2": r.topics[2],
                        "topic3": r.topics[3],
                        "data": r.data,
                    }
                    for r in rows
                ],
            )
        return rows

    def logs_between(self, chain_id: int, first: int, last: int) -> list[RawLogRow]:
        """Stored logs of blocks first..last, in chain order."""
        result = self.session.execute(
            select(WatcherLog)
            .where(
                WatcherLog.chain_id == chain_id,
                WatcherLog.block_number >= first,
                WatcherLog.block_number <= last,
            )
            .order_by(WatcherLog.block_number, WatcherLog.log_index)
        ).scalars()
        return [
            RawLogRow(
                chain_id=r.chain_id,
                block_hash=r.block_hash,
                log_index=r.log_index,
                block_number=r.block_number,
                transaction_hash=r.transaction_hash,
                address=r.address,
                topics=(r.topic0, r.topic1, r.topic2, r.topic3),
                data=r.data,
            )
            for r in result
        ]

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
