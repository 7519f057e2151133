"""Credit requests, provider outcomes, quotes, circuit breakers, wallet KYC tiers, DeFi pools.

Allowed values (outcomes) are written out here: a migration is a snapshot and must not change
when the code it came from does.

Revision ID: 0010_credit
Revises: 0009_idempotency
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_credit"
down_revision: str | Sequence[str] | None = "0009_idempotency"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def _fk(table: str, column: str, target: str, *, cascade: bool = True) -> sa.ForeignKeyConstraint:
    referred = target.split(".")[0]
    return sa.ForeignKeyConstraint(
        [column],
        [target],
        name=op.f(f"fk_{table}_{column}_{referred}"),
        ondelete="CASCADE" if cascade else None,
    )


def upgrade() -> None:
    op.create_table(
        "credit_wallet_kyc",
        sa.Column("wallet", sa.String(length=42), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint("tier >= 0 AND tier <= 3", name=op.f("ck_credit_wallet_kyc_tier")),
        sa.PrimaryKeyConstraint("wallet", name=op.f("pk_credit_wallet_kyc")),
    )
    op.create_table(
        "credit_defi_pools",
        sa.Column("provider_id", sa.BigInteger(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("pool_address", sa.String(length=42), nullable=False),
        sa.Column("asset", sa.String(length=16), nullable=False),
        _fk("credit_defi_pools", "provider_id", "providers.id"),
        sa.PrimaryKeyConstraint("provider_id", name=op.f("pk_credit_defi_pools")),
    )
    op.create_table(
        "credit_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("wallet", sa.String(length=42), nullable=False),
        sa.Column("asset", sa.String(length=16), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=True),
        sa.Column("amount", sa.String(length=78), nullable=False),
        sa.Column("term_days", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=200), nullable=False),
        sa.Column("collateral", sa.JSON(), nullable=True),
        sa.Column("constraints", sa.JSON(), nullable=False),
        sa.Column("risk_score", sa.Integer(), nullable=False),
        sa.Column("risk_reasons", sa.JSON(), nullable=False),
        sa.Column("quote_set_receipt_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_requests")),
    )
    op.create_index("ix_credit_requests_wallet", "credit_requests", ["wallet", "created_at"])
    op.create_table(
        "credit_quotes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("provider_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("excluded_reason", sa.Text(), nullable=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("typed_data", sa.JSON(), nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        _fk("credit_quotes", "request_id", "credit_requests.id"),
        _fk("credit_quotes", "provider_id", "providers.id", cascade=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_quotes")),
    )
    op.create_index("ix_credit_quotes_request", "credit_quotes", ["request_id"])
    op.create_index("ix_credit_quotes_provider", "credit_quotes", ["provider_id", "created_at"])
    op.create_table(
        "credit_provider_outcomes",
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("provider_id", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint(
            "outcome IN ('quoted', 'timed_out', 'declined', 'error', 'circuit_open', 'ineligible')",
            name=op.f("ck_credit_provider_outcomes_outcome"),
        ),
        _fk("credit_provider_outcomes", "request_id", "credit_requests.id"),
        _fk("credit_provider_outcomes", "provider_id", "providers.id", cascade=False),
        sa.PrimaryKeyConstraint(
            "request_id", "provider_id", name=op.f("pk_credit_provider_outcomes")
        ),
    )
    op.create_index(
        "ix_credit_provider_outcomes_provider",
        "credit_provider_outcomes",
        ["provider_id", "created_at"],
    )
    op.create_table(
        "credit_circuit_breakers",
        sa.Column("provider_id", sa.BigInteger(), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("opened_at", _TS, nullable=True),
        sa.Column("probe_started_at", _TS, nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        _fk("credit_circuit_breakers", "provider_id", "providers.id"),
        sa.PrimaryKeyConstraint("provider_id", name=op.f("pk_credit_circuit_breakers")),
    )


def downgrade() -> None:
    op.drop_table("credit_circuit_breakers")
    op.drop_index("ix_credit_provider_outcomes_provider", table_name="credit_provider_outcomes")
    op.drop_table("credit_provider_outcomes")
    op.drop_index("ix_credit_quotes_provider", table_name="credit_quotes")
    op.drop_index("ix_credit_quotes_request", table_name="credit_quotes")
    op.drop_table("credit_quotes")
    op.drop_index("ix_credit_requests_wallet", table_name="credit_requests")
    op.drop_table("credit_requests")
    op.drop_table("credit_defi_pools")
    op.drop_table("credit_wallet_kyc")
