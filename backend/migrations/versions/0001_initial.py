"""Initial schema: worker heartbeats, and the chain adapters' nonces and signed transactions.

`chain_nonces` and `chain_transactions` are defined in `chain_adapters/evm/store.py` (on its own
MetaData, so chain_adapters never imports the backend); this migration owns their DDL. Values
such as the allowed transaction statuses are written out here, not imported: a migration is a
snapshot and must not change when the code it came from does.

Revision ID: 0001
Revises:
Create Date: 2025-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TX_STATUSES = ("pending", "mined", "confirmed", "failed", "replaced", "dropped")


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("id", _BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_heartbeats")),
    )
    op.create_index(
        op.f("ix_worker_heartbeats_nonce"), "worker_heartbeats", ["nonce"], unique=False
    )
    op.create_index(
        op.f("ix_worker_heartbeats_created_at"), "worker_heartbeats", ["created_at"], unique=False
    )

    op.create_table(
        "chain_nonces",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("next_nonce", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("next_nonce >= 0", name=op.f("ck_chain_nonces_next_nonce")),
        sa.PrimaryKeyConstraint("chain_id", "sender", name=op.f("pk_chain_nonces")),
    )

    statuses = ", ".join(f"'{status}'" for status in _TX_STATUSES)
    op.create_table(
        "chain_transactions",
        sa.Column("id", _BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("raw_tx", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("to_address", sa.String(length=42), nullable=True),
        sa.Column("gas_limit", sa.BigInteger(), nullable=False),
        sa.Column("max_fee_per_gas", sa.BigInteger(), nullable=True),
        sa.Column("max_priority_fee_per_gas", sa.BigInteger(), nullable=True),
        sa.Column("gas_price", sa.BigInteger(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("receipt_block_number", sa.BigInteger(), nullable=True),
        sa.Column("receipt_block_hash", sa.String(length=66), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"status IN ({statuses})", name=op.f("ck_chain_transactions_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_transactions")),
        sa.UniqueConstraint(
            "chain_id", "tx_hash", name=op.f("uq_chain_transactions_chain_id_tx_hash")
        ),
    )
    op.create_index(
        op.f("ix_chain_transactions_sender_nonce"),
        "chain_transactions",
        ["chain_id", "sender", "nonce"],
        unique=False,
    )
    op.create_index(
        op.f("ix_chain_transactions_status"),
        "chain_transactions",
        ["chain_id", "status"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_chain_transactions_status"), table_name="chain_transactions")
    op.drop_index(op.f("ix_chain_transactions_sender_nonce"), table_name="chain_transactions")
    op.drop_table("chain_transactions")
    op.drop_table("chain_nonces")
    op.drop_index(op.f("ix_worker_heartbeats_created_at"), table_name="worker_heartbeats")
    op.drop_index(op.f("ix_worker_heartbeats_nonce"), table_name="worker_heartbeats")
    op.drop_table("worker_heartbeats")
