"""Risk and billing projections of the watcher: positions, prices, alerts, usage, statements.

Effect tables reference their log with ON DELETE CASCADE (see backend/watcher/projections.py);
`risk_alert_deliveries` and the billing tables other than `billing_originations` are ledgers and
caches that a rebuild must not drop.

Revision ID: 0012_risk_billing
Revises: 0011_acceptance
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_risk_billing"
down_revision: str | Sequence[str] | None = "0011_acceptance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LOG_KEY = ("chain_id", "block_hash", "log_index")
_TS = sa.DateTime(timezone=True)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _uint(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.String(length=78), nullable=nullable)


def _addr(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.String(length=42), nullable=nullable)


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


def _effect_table(table: str, *columns: sa.Column[object], pk: tuple[str, ...] = ()) -> None:
    op.create_table(
        table,
        *_key_columns(),
        *columns,
        _log_fk(table),
        sa.PrimaryKeyConstraint(*_LOG_KEY, *pk, name=op.f(f"pk_{table}")),
    )


def upgrade() -> None:
    _effect_table(
        "risk_loan_effects",
        _uint("loan_id"),
        sa.Column("kind", sa.String(length=16), nullable=False),
        _addr("borrower", nullable=True),
        _addr("provider", nullable=True),
        _addr("asset", nullable=True),
        _addr("collateral_asset", nullable=True),
        _uint("amount"),
        _uint("after", nullable=True),
    )
    _effect_table(
        "risk_price_effects",
        _addr("feed"),
        sa.Column("round_id", sa.BigInteger(), nullable=False),
        sa.Column("answer", sa.String(length=80), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )
    _effect_table(
        "risk_asset_configs",
        _addr("asset"),
        _addr("feed"),
        sa.Column("threshold_bps", sa.Integer(), nullable=False),
        sa.Column("bonus_bps", sa.Integer(), nullable=False),
        sa.Column("token_decimals", sa.Integer(), nullable=False),
        sa.Column("feed_decimals", sa.Integer(), nullable=False),
    )
    _effect_table(
        "risk_alerts",
        _uint("loan_id"),
        sa.Column("threshold", sa.String(length=16), nullable=False),
        _addr("borrower"),
        _addr("provider"),
        sa.Column("health_factor", sa.String(length=40), nullable=False),
        pk=("loan_id", "threshold"),
    )
    op.create_table(
        "risk_alert_deliveries",
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        _uint("loan_id"),
        sa.Column("threshold", sa.String(length=16), nullable=False),
        sa.Column("provider_id", sa.BigInteger(), nullable=True),
        sa.Column("delivery_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint(
            *_LOG_KEY, "loan_id", "threshold", name=op.f("pk_risk_alert_deliveries")
        ),
    )
    _effect_table(
        "billing_originations",
        _uint("loan_id"),
        _addr("provider"),
        _addr("asset"),
        _uint("principal"),
    )
    op.create_table(
        "billing_block_times",
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "number", name=op.f("pk_billing_block_times")),
    )
    op.create_table(
        "billing_subscriptions",
        sa.Column("provider_id", sa.BigInteger(), nullable=False),
        sa.Column("plan", sa.String(length=32), nullable=False),
        sa.Column("currency_chain_id", sa.BigInteger(), nullable=False),
        _addr("currency_address"),
        sa.Column("currency_symbol", sa.String(length=16), nullable=False),
        sa.Column("currency_decimals", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_billing_subscriptions_provider_id_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("provider_id", name=op.f("pk_billing_subscriptions")),
    )
    op.create_table(
        "billing_statements",
        sa.Column("id", _BIGID, autoincrement=True, nullable=False),
        sa.Column("provider_id", sa.BigInteger(), nullable=False),
        sa.Column("period_start", _TS, nullable=False),
        sa.Column("period_end", _TS, nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("plan", sa.String(length=32), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        _uint("total"),
        sa.Column("receipt_id", sa.String(length=36), nullable=True),
        sa.Column("computed_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_billing_statements_provider_id_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_statements")),
        sa.UniqueConstraint(
            "provider_id",
            "period_start",
            name=op.f("uq_billing_statements_provider_id_period_start"),
        ),
    )


def downgrade() -> None:
    for table in (
        "billing_statements",
        "billing_subscriptions",
        "billing_block_times",
        "billing_originations",
        "risk_alert_deliveries",
        "risk_alerts",
        "risk_asset_configs",
        "risk_price_effects",
        "risk_loan_effects",
    ):
        op.drop_table(table)
