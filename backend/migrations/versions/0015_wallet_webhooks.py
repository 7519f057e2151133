"""Wallet-side webhooks for early-warning alerts (issue 6).

Revision ID: 0015_wallet_webhooks
Revises: 0014_log_sequencing
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0015_wallet_webhooks"
down_revision: str | Sequence[str] | None = "0014_log_sequencing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
