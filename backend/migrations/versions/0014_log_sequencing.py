"""Receipts and audit entries sequenced after commit (issue 5 fan-out latency).

Revision ID: 0014_log_sequencing
Revises: 0013_provider_answers
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0014_log_sequencing"
down_revision: str | Sequence[str] | None = "0013_provider_answers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
