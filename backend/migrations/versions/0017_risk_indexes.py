"""Indexes on the risk effect tables for the per-step and per-wallet reads.

Raising a step's alerts loads one loan's history, the latest config of an asset and the latest
price of a feed before a position, and a wallet's reads load its own loans: without these each
was a scan of the chain's effect rows (a few ms at 10k rows, linear beyond).

Revision ID: 0017_risk_indexes
Revises: 0016_watcher_speed
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017_risk_indexes"
down_revision: str | Sequence[str] | None = "0016_watcher_speed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("ix_risk_loan_effects_loan", "risk_loan_effects", ("chain_id", "loan_id")),
    ("ix_risk_loan_effects_borrower", "risk_loan_effects", ("borrower", "chain_id")),
    (
        "ix_risk_loan_effects_position",
        "risk_loan_effects",
        ("chain_id", "block_number", "log_index"),
    ),
    (
        "ix_risk_price_effects_feed",
        "risk_price_effects",
        ("chain_id", "feed", "block_number", "log_index"),
    ),
    (
        "ix_risk_price_effects_position",
        "risk_price_effects",
        ("chain_id", "block_number", "log_index"),
    ),
    (
        "ix_risk_asset_configs_asset",
        "risk_asset_configs",
        ("chain_id", "asset", "block_number", "log_index"),
    ),
    (
        "ix_risk_asset_configs_position",
        "risk_asset_configs",
        ("chain_id", "block_number", "log_index"),
    ),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, list(columns))


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
