"""Tables of the receipts log: receipts, the Merkle subtree cache, the log size, checkpoints.

Everything here is append-only. A receipt is never edited or deleted (a correction is a new
receipt whose `corrects_id` names the earlier one); `leaf_index` is assigned once, in the
transaction that stores the receipt, and `merkle_nodes` holds every complete, aligned subtree
hash (level 0 = leaf hashes) so proofs read O(log n) rows instead of the whole log.

Imported by the database side only: the offline verifier never imports this module.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import Base
from backend.kit.columns import BigIntPK, UTCDateTime, utcnow

LOG_STATE_ID = 1  # merkle_log_state holds exactly one row, with this id


class ReceiptKind(StrEnum):
    QUOTE_SET = "quote_set"
    ACCEPTANCE = "acceptance"
    REPAYMENT = "repayment"
    LIQUIDATION = "liquidation"
    BILLING_STATEMENT = "billing_statement"
    AUDIT_CHECKPOINT = "audit_checkpoint"


_KINDS_SQL = ", ".join(f"'{kind.value}'" for kind in ReceiptKind)


class Receipt(Base):
    """One issued receipt: the canonical fields, its salt and commitment, and its log index."""

    __tablename__ = "receipts"
    __table_args__ = (
        CheckConstraint(f"kind IN ({_KINDS_SQL})", name="kind"),
        CheckConstraint("leaf_index >= 0", name="leaf_index"),
        CheckConstraint("schema_version >= 1", name="schema_version"),
        CheckConstraint("include_by >= issued_at", name="include_by"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    leaf_index: Mapped[int] = mapped_column(BigInteger, unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    schema_version: Mapped[int] = mapped_column(Integer)
    tenant: Mapped[str] = mapped_column(String(128), index=True)
    subject: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The promised latest inclusion time, as signed in the issuance signature (v2).
    include_by: Mapped[datetime] = mapped_column(UTCDateTime())
    corrects_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid(), ForeignKey("receipts.id"), index=True
    )
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    commitment: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    key_id: Mapped[str] = mapped_column(String(64))
    issuance_signature: Mapped[str] = mapped_column(String(128))


class MerkleNode(Base):
    """The hash of the complete subtree of 2**level leaves starting at leaf index * 2**level."""

    __tablename__ = "merkle_nodes"
    __table_args__ = (CheckConstraint("level >= 0 AND level < 64", name="level"),)

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class MerkleLogState(Base):
    """The single row holding the log size; locked to allocate leaf indices."""

    __tablename__ = "merkle_log_state"
    __table_args__ = (
        CheckConstraint(f"id = {LOG_STATE_ID}", name="single_row"),
        CheckConstraint("size >= 0", name="size"),
    )

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)


class LogCheckpoint(Base):
    """A signed (size, root, time) statement of the log; at most one per size."""

    __tablename__ = "log_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    timestamp: Mapped[int] = mapped_column(BigInteger)  # Unix seconds, as signed
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))


# ------------------------------------------------------------------------------------ anchors


class AnchorStatus(StrEnum):
    """pending (sent, no receipt yet) -> confirmed (mined) -> final; dropped by a reorg."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    FINAL = "final"
    DROPPED = "dropped"


_ANCHOR_STATUSES_SQL = ", ".join(f"'{status.value}'" for status in AnchorStatus)


class Anchor(Base):
    """One `anchor(tree_size, root)` of the log on one chain, and what became of its tx.

    At most one row per (chain, size) that is not `dropped`: a size is sent once per chain, and
    again only after a reorg dropped its transaction (the dropped row stays, as history).
    """

    __tablename__ = "receipt_anchors"
    __table_args__ = (
        CheckConstraint(f"status IN ({_ANCHOR_STATUSES_SQL})", name="status"),
        CheckConstraint("tree_size > 0", name="tree_size"),
        Index(
            "uq_receipt_anchors_live_size",
            "chain_id",
            "tree_size",
            unique=True,
            sqlite_where=text("status <> 'dropped'"),
            postgresql_where=text("status <> 'dropped'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    contract: Mapped[str] = mapped_column(String(42))
    tree_size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(66))
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
