"""Receipts log: receipts, the Merkle subtree cache, the single-row log size, checkpoints.

The allowed receipt kinds are written out here (a migration is a snapshot). The one
`merkle_log_state` row (size 0) is inserted here, so issuance only ever locks and updates it.

Revision ID: 0002_receipts
Revises: 0001
Create Date: 2025-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_receipts"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS = (
    "quote_set",
    "acceptance",
    "repayment",
    "liquidation",
    "billing_statement",
    "audit_checkpoint",
)


def upgrade() -> None:
    kinds = ", ".join(f"'{kind}'" for kind in _KINDS)
    op.create_table(
        "receipts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("leaf_index", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("corrects_id", sa.Uuid(), nullable=True),
        sa.Column("salt", sa.LargeBinary(length=32), nullable=False),
        sa.Column("commitment", sa.LargeBinary(length=32), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("issuance_signature", sa.String(length=128), nullable=False),
        sa.CheckConstraint(f"kind IN ({kinds})", name=op.f("ck_receipts_kind")),
        sa.CheckConstraint("leaf_index >= 0", name=op.f("ck_receipts_leaf_index")),
        sa.CheckConstraint("schema_version >= 1", name=op.f("ck_receipts_schema_version")),
        sa.ForeignKeyConstraint(
            ["corrects_id"], ["receipts.id"], name=op.f("fk_receipts_corrects_id_receipts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receipts")),
        sa.UniqueConstraint("commitment", name=op.f("uq_receipts_commitment")),
        sa.UniqueConstraint("leaf_index", name=op.f("uq_receipts_leaf_index")),
    )
    op.create_index(op.f("ix_receipts_tenant"), "receipts", ["tenant"], unique=False)
    op.create_index(op.f("ix_receipts_corrects_id"), "receipts", ["corrects_id"], unique=False)

    op.create_table(
        "merkle_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.CheckConstraint("level >= 0 AND level < 64", name=op.f("ck_merkle_nodes_level")),
        sa.PrimaryKeyConstraint("level", "index", name=op.f("pk_merkle_nodes")),
    )

    log_state = op.create_table(
        "merkle_log_state",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_merkle_log_state_single_row")),
        sa.CheckConstraint("size >= 0", name=op.f("ck_merkle_log_state_size")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merkle_log_state")),
    )
    op.bulk_insert(log_state, [{"id": 1, "size": 0}])

    op.create_table(
        "log_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_log_checkpoints")),
    )


def downgrade() -> None:
    op.drop_table("log_checkpoints")
    op.drop_table("merkle_log_state")
    op.drop_table("merkle_nodes")
    op.drop_index(op.f("ix_receipts_corrects_id"), table_name="receipts")
    op.drop_index(op.f("ix_receipts_tenant"), table_name="receipts")
    op.drop_table("receipts")
