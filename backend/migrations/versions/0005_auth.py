"""Wallet sessions, SIWE nonces, providers and API keys.

Allowed values (provider kinds and statuses, key kinds) are written out here: a migration is a
snapshot and must not change when the code it came from does.

Revision ID: 0005_auth
Revises: 0004_audit
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_auth"
down_revision: str | Sequence[str] | None = "0004_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "providers",
        sa.Column("id", _BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('defi', 'traditional')", name=op.f("ck_providers_kind")),
        sa.CheckConstraint("status IN ('active', 'suspended')", name=op.f("ck_providers_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_providers")),
        sa.UniqueConstraint("name", name=op.f("uq_providers_name")),
    )

    op.create_table(
        "siwe_nonces",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_siwe_nonces")),
    )
    op.create_index(op.f("ix_siwe_nonces_expires_at"), "siwe_nonces", ["expires_at"], unique=False)

    op.create_table(
        "wallet_sessions",
        sa.Column("id", _BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_wallet_sessions_token_hash")),
    )
    op.create_index(
        op.f("ix_wallet_sessions_address"), "wallet_sessions", ["address"], unique=False
    )

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("provider_id", sa.BigInteger(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replaced_by_id", sa.String(length=32), nullable=True),
        sa.CheckConstraint("kind IN ('provider', 'auditor')", name=op.f("ck_api_keys_kind")),
        sa.CheckConstraint(
            "(kind = 'provider' AND provider_id IS NOT NULL) "
            "OR (kind = 'auditor' AND provider_id IS NULL)",
            name=op.f("ck_api_keys_owner"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["providers.id"], name=op.f("fk_api_keys_provider_id_providers")
        ),
        sa.ForeignKeyConstraint(
            ["replaced_by_id"], ["api_keys.id"], name=op.f("fk_api_keys_replaced_by_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
    )
    op.create_index(op.f("ix_api_keys_provider_id"), "api_keys", ["provider_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_api_keys_provider_id"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index(op.f("ix_wallet_sessions_address"), table_name="wallet_sessions")
    op.drop_table("wallet_sessions")
    op.drop_index(op.f("ix_siwe_nonces_expires_at"), table_name="siwe_nonces")
    op.drop_table("siwe_nonces")
    op.drop_table("providers")
