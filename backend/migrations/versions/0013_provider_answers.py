"""Answers that lenders post later (`POST /v1/provider/quotes`) instead of inline.

Revision ID: 0013_provider_answers
Revises: 0012_risk_billing
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_provider_answers"
down_revision: str | Sequence[str] | None = "0012_risk_billing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "credit_provider_answers",
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("provider_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("deadline", _TS, nullable=False),
        sa.Column("body", sa.JSON(), nullable=True),
        sa.Column("received_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint(
            "kind IN ('pending', 'quote', 'decline', 'inline', 'closed')",
            name=op.f("ck_credit_provider_answers_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_credit_provider_answers_provider_id_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "request_id", "provider_id", name=op.f("pk_credit_provider_answers")
        ),
    )


def downgrade() -> None:
    op.drop_table("credit_provider_answers")
