"""Tables of the audit log: the entries, and the single head row that serialises appends.

Entries are append-only: nothing in the code updates or deletes one. `audit_head` holds the
last entry's (seq, hash); every append locks it (SELECT ... FOR UPDATE on PostgreSQL; SQLite's
BEGIN IMMEDIATE already serialises writers), which makes seq gapless and the chain linear
under any number of API replicas. The migration inserts the head row as (0, 32 zero bytes).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import Base
from backend.kit.columns import UTCDateTime

HEAD_ID = 1  # audit_head holds exactly one row, with this id


class AuditEntry(Base):
    """One state-changing API call: who, what, on which resource, how it ended, and the chain."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        CheckConstraint("seq >= 1", name="seq"),
        CheckConstraint("status >= 100 AND status <= 599", name="status"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(255))
    resource: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[int] = mapped_column(SmallInteger)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    entry_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditHead(Base):
    """The single row holding the last entry's (seq, hash); locked to append."""

    __tablename__ = "audit_head"
    __table_args__ = (
        CheckConstraint(f"id = {HEAD_ID}", name="single_row"),
        CheckConstraint("seq >= 0", name="seq"),
    )

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    entry_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
