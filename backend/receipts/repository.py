"""All SQL of the receipts log."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from backend.kit.repository import RepositoryBase
from backend.receipts.models import (
    LOG_STATE_ID,
    LogCheckpoint,
    MerkleLogState,
    MerkleNode,
    Receipt,
)

NodeKey = tuple[int, int]  # (level, index)


class NewReceiptRow(NamedTuple):
    """One receipt to insert. `payload_json` is the payload's JSON text, made by the caller
    anyway (for hashing), which PostgreSQL's COPY stores as is."""

    id: uuid.UUID
    leaf_index: int
    kind: str
    schema_version: int
    tenant: str
    subject: str
    payload: dict[str, Any]
    payload_json: str
    issued_at: datetime
    include_by: datetime
    corrects_id: uuid.UUID | None
    salt: bytes
    commitment: bytes
    key_id: str
    issuance_signature: str


_RECEIPT_COLUMNS = ", ".join(name for name in NewReceiptRow._fields if name != "payload_json")


class ReceiptRepository(RepositoryBase[Receipt]):
    model = Receipt

    def existing_ids(self, ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        """Which of `ids` are stored receipts."""
        if not ids:
            return set()
        rows = self.session.execute(select(Receipt.id).where(Receipt.id.in_(list(ids))))
        return set(rows.scalars())

    def insert_many(self, rows: Sequence[NewReceiptRow]) -> None:
        """Insert a batch: COPY on PostgreSQL (the issuance hot path), else one executemany.

        COPY runs on the session's own connection, so it is part of the caller's transaction
        exactly like an INSERT; it skips SQLAlchemy's per-row bind processing, which cost more
        than the database's own work. The column types do the same checks either way.
        """
        if not rows:
            return
        if _dialect(self.session) == "postgresql":
            _copy(
                self.session,
                f"COPY receipts ({_RECEIPT_COLUMNS}) FROM STDIN",
                ((*row[:6], row.payload_json, *row[8:]) for row in rows),
            )
        else:  # Core, not ORM bulk: the rows are plain values and need no identity map
            values = [row._asdict() for row in rows]
            for value in values:
                del value["payload_json"]
            self.session.connection().execute(insert(Receipt), values)

    def commitment_at(self, leaf_index: int) -> bytes | None:
        statement = select(Receipt.commitment).where(Receipt.leaf_index == leaf_index)
        return self.session.execute(statement).scalar_one_or_none()

    def commitments_at(self, indices: Collection[int]) -> dict[int, bytes]:
        """Commitments of the leaves at `indices`, in one query."""
        if not indices:
            return {}
        statement = select(Receipt.leaf_index, Receipt.commitment).where(
            Receipt.leaf_index.in_(list(indices))
        )
        return {index: value for index, value in self.session.execute(statement)}

    def commitments_in_order(self, *, start: int = 0, stop: int | None = None) -> list[bytes]:
        """Commitments of leaves [start, stop) in index order (audits and tests, not proofs)."""
        statement = select(Receipt.commitment).where(Receipt.leaf_index >= start)
        if stop is not None:
            statement = statement.where(Receipt.leaf_index < stop)
        return list(self.session.execute(statement.order_by(Receipt.leaf_index)).scalars())

    def leaf_indices(self) -> list[int]:
        statement = select(Receipt.leaf_index).order_by(Receipt.leaf_index)
        return list(self.session.execute(statement).scalars())


class MerkleNodeRepository(RepositoryBase[MerkleNode]):
    model = MerkleNode

    def get_hash(self, level: int, index: int) -> bytes | None:
        statement = select(MerkleNode.hash).where(
            MerkleNode.level == level, MerkleNode.index == index
        )
        return self.session.execute(statement).scalar_one_or_none()

    def get_hashes(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        """The stored hashes among `keys`, in one query."""
        wanted = list(keys)
        if not wanted:
            return {}
        condition = or_(
            *(and_(MerkleNode.level == level, MerkleNode.index == index) for level, index in wanted)
        )
        rows = self.session.execute(
            select(MerkleNode.level, MerkleNode.index, MerkleNode.hash).where(condition)
        )
        return {(level, index): digest for level, index, digest in rows}

    def insert_many(self, nodes: Mapping[NodeKey, bytes]) -> None:
        """Insert new subtree hashes: COPY on PostgreSQL, else one executemany."""
        if not nodes:
            return
        if _dialect(self.session) == "postgresql":
            _copy(
                self.session,
                'COPY merkle_nodes (level, "index", hash) FROM STDIN',
                ((level, index, digest) for (level, index), digest in nodes.items()),
            )
        else:
            rows = [
                {"level": lv, "index": ix, "hash": digest} for (lv, ix), digest in nodes.items()
            ]
            self.session.connection().execute(insert(MerkleNode), rows)

    def insert_if_absent(self, level: int, index: int, digest: bytes) -> None:
        """Store a node unless present (nodes are deterministic, so a race is harmless)."""
        statement = _insert_ignoring_conflicts(self.session.get_bind().dialect.name, MerkleNode)
        self.session.execute(statement.values(level=level, index=index, hash=digest))

    def all_hashes(self) -> dict[NodeKey, bytes]:
        """Every stored node (audits and tests only)."""
        rows = self.session.execute(select(MerkleNode.level, MerkleNode.index, MerkleNode.hash))
        return {(level, index): digest for level, index, digest in rows}


class MerkleLogStateRepository(RepositoryBase[MerkleLogState]):
    model = MerkleLogState

    def size(self) -> int:
        statement = select(MerkleLogState.size).where(MerkleLogState.id == LOG_STATE_ID)
        return int(self.session.execute(statement).scalar_one())

    def lock_size(self) -> int:
        """The size, with the row locked until the transaction ends.

        `FOR UPDATE` on PostgreSQL; SQLite has no row locks (and drops the clause), but every
        transaction there began with BEGIN IMMEDIATE, so it already holds the only write lock.
        """
        statement = (
            select(MerkleLogState.size).where(MerkleLogState.id == LOG_STATE_ID).with_for_update()
        )
        return int(self.session.execute(statement).scalar_one())

    def advance_size(self, count: int) -> int:
        """Grow the size by `count` and return the new size, locking the row until the
        transaction ends: the lock, the read and the write in one round trip."""
        statement = (
            update(MerkleLogState)
            .where(MerkleLogState.id == LOG_STATE_ID)
            .values(size=MerkleLogState.size + count)
            .returning(MerkleLogState.size)
        )
        return int(self.session.execute(statement).scalar_one())

    def earliest_include_by(self, *, from_index: int) -> datetime | None:
        """The soonest inclusion deadline among receipts at leaf index >= `from_index`."""
        statement = select(func.min(Receipt.include_by)).where(Receipt.leaf_index >= from_index)
        value: datetime | None = self.session.execute(statement).scalar_one_or_none()
        return value

    def set_size(self, size: int) -> None:
        self.session.execute(
            update(MerkleLogState).where(MerkleLogState.id == LOG_STATE_ID).values(size=size)
        )


class LogCheckpointRepository(RepositoryBase[LogCheckpoint]):
    model = LogCheckpoint

    def latest(self) -> LogCheckpoint | None:
        statement = self.get_base_statement().order_by(LogCheckpoint.size.desc()).limit(1)
        return self.get_one_or_none(statement)

    def insert_if_absent(self, checkpoint: LogCheckpoint) -> LogCheckpoint:
        """Store `checkpoint` unless one exists for its size; return the stored one."""
        statement = _insert_ignoring_conflicts(self.session.get_bind().dialect.name, LogCheckpoint)
        self.session.execute(
            statement.values(
                size=checkpoint.size,
                root=checkpoint.root,
                timestamp=checkpoint.timestamp,
                key_id=checkpoint.key_id,
                signature=checkpoint.signature,
            )
        )
        stored = self.get_one_or_none(
            self.get_base_statement().where(LogCheckpoint.size == checkpoint.size)
        )
        assert stored is not None  # inserted just now, or already there
        return stored


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _copy(session: Session, statement: str, rows: Iterable[Sequence[Any]]) -> None:
    """COPY `rows` in through the session's connection (psycopg 3), in its transaction."""
    driver = session.connection().connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        for row in rows:
            copy.write_row(row)


def _insert_ignoring_conflicts(dialect: str, model: type[Any]) -> Insert:
    if dialect == "postgresql":
        return postgresql.insert(model).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(model).on_conflict_do_nothing()
    raise NotImplementedError(f"no insert-if-absent for dialect {dialect!r}")
