"""Acceptances and the loans they open; lenders' payout addresses.

Allowed values (loan statuses) are written out here: a migration is a snapshot and must not
change when the code it came from does.

Revision ID: 0011_acceptance
Revises: 0010_credit
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_acceptance"
down_revision: str | Sequence[str] | None = "0010_credit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def _fk(column: str, target: str) -> sa.ForeignKeyConstraint:
    referred = target.split(".")[0]
    return sa.ForeignKeyConstraint(
        [column], [target], name=op.f(f"fk_credit_loans_{column}_{referred}")
    )


def upgrade() -> None:
    op.create_table(
        "credit_loans",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("quote_id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("wallet", sa.String(length=42), nullable=False),
        sa.Column("provider_id", sa.BigInteger(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("aggregator", sa.String(length=42), nullable=False),
        sa.Column("loan_id", sa.String(length=78), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("acceptance_digest", sa.String(length=66), nullable=False),
        sa.Column("receipt_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'repaid', 'defaulted', 'closed')",
            name=op.f("ck_credit_loans_status"),
        ),
        _fk("quote_id", "credit_quotes.id"),
        _fk("request_id", "credit_requests.id"),
        _fk("provider_id", "providers.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_loans")),
        sa.UniqueConstraint("quote_id", name=op.f("uq_credit_loans_quote_id")),
        sa.UniqueConstraint("request_id", name=op.f("uq_credit_loans_request_id")),
        sa.UniqueConstraint(
            "chain_id",
            "aggregator",
            "loan_id",
            name=op.f("uq_credit_loans_chain_id_aggregator_loan_id"),
        ),
    )
    op.create_index("ix_credit_loans_wallet", "credit_loans", ["wallet", "created_at"])
    op.create_index("ix_credit_loans_provider", "credit_loans", ["provider_id", "created_at"])
    with op.batch_alter_table("provider_profiles") as batch:
        batch.add_column(sa.Column("payout_address", sa.String(length=42), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("provider_profiles") as batch:
        batch.drop_column("payout_address")
    op.drop_index("ix_credit_loans_provider", table_name="credit_loans")
    op.drop_index("ix_credit_loans_wallet", table_name="credit_loans")
    op.drop_table("credit_loans")
