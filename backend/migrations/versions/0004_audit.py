"""Hash-chained audit log: the entries and the single head row that serialises appends.

The head row (seq 0, 32 zero bytes: the genesis `prev_hash`) is inserted here, so an append only
ever locks and updates it.

Revision ID: 0004_audit
Revises: 0003_anchors
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_audit"
down_revision: str | Sequence[str] | None = "0003_anchors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=255), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("entry_hash", sa.LargeBinary(length=32), nullable=False),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_audit_entries_seq")),
        sa.CheckConstraint("status >= 100 AND status <= 599", name=op.f("ck_audit_entries_status")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_entries")),
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("entry_hash", sa.LargeBinary(length=32), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_head_single_row")),
        sa.CheckConstraint("seq >= 0", name=op.f("ck_audit_head_seq")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "entry_hash": bytes(32)}])


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_table("audit_entries")
