"""Receipt anchors: each `anchor(size, root)` sent to a chain, its transaction and status.

The partial unique index lets a (chain, size) be sent again only after its earlier row was
dropped by a reorg; statuses are written out here (a migration is a snapshot).

Revision ID: 0003_anchors
Revises: 0002_receipts
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_anchors"
down_revision: str | Sequence[str] | None = "0002_receipts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUSES = ("pending", "confirmed", "final", "dropped")


def upgrade() -> None:
    statuses = ", ".join(f"'{status}'" for status in _STATUSES)
    op.create_table(
        "receipt_anchors",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("contract", sa.String(length=42), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(length=66), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"status IN ({statuses})", name=op.f("ck_receipt_anchors_status")),
        sa.CheckConstraint("tree_size > 0", name=op.f("ck_receipt_anchors_tree_size")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receipt_anchors")),
    )
    op.create_index(op.f("ix_receipt_anchors_status"), "receipt_anchors", ["status"], unique=False)
    op.create_index(
        "uq_receipt_anchors_live_size",
        "receipt_anchors",
        ["chain_id", "tree_size"],
        unique=True,
        sqlite_where=sa.text("status <> 'dropped'"),
        postgresql_where=sa.text("status <> 'dropped'"),
    )


def downgrade() -> None:
    op.drop_index("uq_receipt_anchors_live_size", table_name="receipt_anchors")
    op.drop_index(op.f("ix_receipt_anchors_status"), table_name="receipt_anchors")
    op.drop_table("receipt_anchors")
