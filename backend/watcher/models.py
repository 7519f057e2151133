"""Tables of the watcher: per-chain cursor, the unfinalised headers, raw logs, effect rows.

Raw logs are keyed (chain_id, block_hash, log_index): a log is identified by the block it is in,
so the same transaction re-mined in another block after a reorg is another log. Every effect row
of a projection carries that key as a foreign key with ON DELETE CASCADE, so deleting an orphaned
block's logs removes exactly the effects they caused, in the database, whoever deletes them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import Base
from backend.kit.columns import UTCDateTime

HASH = String(66)
ADDRESS = String(42)


class WatcherCursor(Base):
    """How far a chain is ingested: (number, hash) of the last block whose logs are stored.

    `final_number` is the last block whose logs were delivered to final-phase projections; it
    only moves forward together with those deliveries, which makes the delivery exactly-once.
    """

    __tablename__ = "watcher_cursors"
    __table_args__ = (CheckConstraint("final_number <= block_number", name="final_le_cursor"),)

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(HASH)
    final_number: Mapped[int] = mapped_column(BigInteger)
    start_block: Mapped[int] = mapped_column(BigInteger)
    head: Mapped[int | None] = mapped_column(BigInteger)
    finalized: Mapped[int | None] = mapped_column(BigInteger)
    reorg_count: Mapped[int] = mapped_column(Integer, default=0)
    logs_ingested: Mapped[int] = mapped_column(BigInteger, default=0)  # monotonic, for rates
    last_reorg_depth: Mapped[int | None] = mapped_column(Integer)
    last_reorg_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WatcherBlock(Base):
    """A header we built on: the unfinalised window plus the end of each backfilled range."""

    __tablename__ = "watcher_blocks"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(HASH)
    parent_hash: Mapped[str] = mapped_column(HASH)


class WatcherTarget(Base):
    """An address whose logs are stored for every block from the cursor's start to the cursor.

    The watch list can grow (a price feed configured later); a new address's earlier logs are
    backfilled before it is recorded here, in the transaction that records it
    (backend/watcher/history.py), so a recorded target never has a gap.
    """

    __tablename__ = "watcher_targets"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    address: Mapped[str] = mapped_column(ADDRESS, primary_key=True)
    since_block: Mapped[int] = mapped_column(BigInteger)  # the cursor when it was recorded
    history_logs: Mapped[int] = mapped_column(BigInteger, default=0)  # backfilled then
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WatcherLog(Base):
    """One raw log of a watched contract, on the canonical chain as far as we know."""

    __tablename__ = "watcher_logs"
    __table_args__ = (Index("ix_watcher_logs_chain_block", "chain_id", "block_number"),)

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    block_hash: Mapped[str] = mapped_column(HASH, primary_key=True)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    block_number: Mapped[int] = mapped_column(BigInteger)
    transaction_hash: Mapped[str] = mapped_column(HASH)
    address: Mapped[str] = mapped_column(ADDRESS)
    topic0: Mapped[str | None] = mapped_column(HASH)
    topic1: Mapped[str | None] = mapped_column(HASH)
    topic2: Mapped[str | None] = mapped_column(HASH)
    topic3: Mapped[str | None] = mapped_column(HASH)
    data: Mapped[bytes] = mapped_column(LargeBinary)


def _log_fk(table: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["chain_id", "block_hash", "log_index"],
        ["watcher_logs.chain_id", "watcher_logs.block_hash", "watcher_logs.log_index"],
        ondelete="CASCADE",
        name=f"fk_{table}_log",
    )


class AnchoredEffect(Base):
    """Head-phase effect of ReceiptAnchor's `Anchored` (the `anchors` projection)."""

    __tablename__ = "watcher_anchored"
    __table_args__ = (_log_fk("watcher_anchored"),)

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    block_hash: Mapped[str] = mapped_column(HASH, primary_key=True)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    block_number: Mapped[int] = mapped_column(BigInteger)
    contract: Mapped[str] = mapped_column(ADDRESS)
    tree_size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    prev_size: Mapped[int] = mapped_column(BigInteger)


class FinalAnchoredEffect(Base):
    """Final-phase effect of `Anchored` (the `final_anchors` projection): delivered once final."""

    __tablename__ = "watcher_final_anchored"
    __table_args__ = (_log_fk("watcher_final_anchored"),)

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    block_hash: Mapped[str] = mapped_column(HASH, primary_key=True)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    block_number: Mapped[int] = mapped_column(BigInteger)
    tree_size: Mapped[int] = mapped_column(BigInteger)
