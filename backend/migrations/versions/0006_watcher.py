"""Chain watcher: block headers, raw logs, cursors, and the anchors projections' effect rows.

Effect tables reference their log with ON DELETE CASCADE: deleting an orphaned log deletes
exactly its effects (see backend/watcher/projections.py).

Revision ID: 0006_watcher
Revises: 0005_auth
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_watcher"
down_revision: str | Sequence[str] | None = "0005_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LOG_KEY = ("chain_id", "block_hash", "log_index")


def _key_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
    ]


def _log_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        list(_LOG_KEY),
        [f"watcher_logs.{c}" for c in _LOG_KEY],
        name=f"fk_{table}_log",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "watcher_cursors",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("final_number", sa.BigInteger(), nullable=False),
        sa.Column("start_block", sa.BigInteger(), nullable=False),
        sa.Column("head", sa.BigInteger(), nullable=True),
        sa.Column("finalized", sa.BigInteger(), nullable=True),
        sa.Column("reorg_count", sa.Integer(), nullable=False),
        sa.Column("logs_ingested", sa.BigInteger(), nullable=False),
        sa.Column("last_reorg_depth", sa.Integer(), nullable=True),
        sa.Column("last_reorg_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "final_number <= block_number", name=op.f("ck_watcher_cursors_final_le_cursor")
        ),
        sa.PrimaryKeyConstraint("chain_id", name=op.f("pk_watcher_cursors")),
    )
    op.create_table(
        "watcher_blocks",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=66), nullable=False),
        sa.Column("parent_hash", sa.String(length=66), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "number", name=op.f("pk_watcher_blocks")),
    )
    op.create_table(
        "watcher_logs",
        *_key_columns(),
        sa.Column("transaction_hash", sa.String(length=66), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("topic0", sa.String(length=66), nullable=True),
        sa.Column("topic1", sa.String(length=66), nullable=True),
        sa.Column("topic2", sa.String(length=66), nullable=True),
        sa.Column("topic3", sa.String(length=66), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint(*_LOG_KEY, name=op.f("pk_watcher_logs")),
    )
    op.create_index(
        "ix_watcher_logs_chain_block", "watcher_logs", ["chain_id", "block_number"], unique=False
    )
    op.create_table(
        "watcher_anchored",
        *_key_columns(),
        sa.Column("contract", sa.String(length=42), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("prev_size", sa.BigInteger(), nullable=False),
        _log_fk("watcher_anchored"),
        sa.PrimaryKeyConstraint(*_LOG_KEY, name=op.f("pk_watcher_anchored")),
    )
    op.create_table(
        "watcher_final_anchored",
        *_key_columns(),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        _log_fk("watcher_final_anchored"),
        sa.PrimaryKeyConstraint(*_LOG_KEY, name=op.f("pk_watcher_final_anchored")),
    )


def downgrade() -> None:
    op.drop_table("watcher_final_anchored")
    op.drop_table("watcher_anchored")
    op.drop_index("ix_watcher_logs_chain_block", table_name="watcher_logs")
    op.drop_table("watcher_logs")
    op.drop_table("watcher_blocks")
    op.drop_table("watcher_cursors")
