"""Receipts: `include_by`, the inclusion deadline the issuance signature promises (v2 message).

Rows signed before this revision carried no promise; they get `include_by = issued_at`, which
claims nothing beyond what was already true (the log holds them).

Revision ID: 0007_receipt_include_by
Revises: 0006_watcher
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_receipt_include_by"
down_revision: str | Sequence[str] | None = "0006_watcher"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("receipts") as batch:
        batch.add_column(sa.Column("include_by", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE receipts SET include_by = issued_at WHERE include_by IS NULL")
    with op.batch_alter_table("receipts") as batch:
        batch.alter_column("include_by", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.create_check_constraint(op.f("ck_receipts_include_by"), "include_by >= issued_at")


def downgrade() -> None:
    with op.batch_alter_table("receipts") as batch:
        batch.drop_constraint(op.f("ck_receipts_include_by"), type_="check")
        batch.drop_column("include_by")
