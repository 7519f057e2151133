"""Risk and billing projections of the watcher: positions, prices, alerts, usage, statements.

Revision ID: 0012_risk_billing
Revises: 0011_acceptance
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0012_risk_billing"
down_revision: str | Sequence[str] | None = "0011_acceptance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # PLACEHOLDER: filled in by the owner of this revision


def downgrade() -> None:
    pass
