"""Watcher backfill speed (issue 6).

Revision ID: 0016_watcher_speed
Revises: 0015_wallet_webhooks
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0016_watcher_speed"
down_revision: str | Sequence[str] | None = "0015_wallet_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
