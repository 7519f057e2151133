"""Wallet-side webhooks for early-warning alerts (issue 6).

* `wallet_webhook_endpoints`: a wallet's endpoint and (encrypted) signing secrets;
* `webhook_deliveries` / `webhook_attempts` serve providers and wallets: `provider_id` becomes
  nullable, `wallet` is added, and a check keeps exactly one subscriber per delivery;
* `risk_alert_deliveries` is keyed per (alert, recipient): `recipient` joins the primary key
  (existing rows were all for lenders: 'provider'), `wallet` names a wallet recipient; every
  alert already offered to its lender is marked offered to its wallet too (never sent);
* `risk_alerts.price`: the collateral price after the log that raised the alert.

SQLite cannot alter a column's nullability or a primary key in place, so those tables are
rebuilt (batch mode). Rebuilding `webhook_deliveries` drops the old table, and with foreign keys
on that cascades to `webhook_attempts`: the attempts are copied aside first and put back.

Revision ID: 0015_wallet_webhooks
Revises: 0013_provider_answers
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0015_wallet_webhooks"
down_revision: str | Sequence[str] | None = "0013_provider_answers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_ONE_SUBSCRIBER = "(provider_id IS NULL) <> (wallet IS NULL)"
#: Written out, not derived: a migration is a snapshot (and these are trusted constants).
_ATTEMPT_COLUMNS = (
    "id, delivery_id, provider_id, attempt_number, url, started_at, duration_ms, "
    "status_code, error, response_excerpt"
)
_SAVE_ATTEMPTS = (
    f"CREATE TEMP TABLE _attempts_0015 AS SELECT {_ATTEMPT_COLUMNS} FROM webhook_attempts"  # noqa: S608
)
_RESTORE_ATTEMPTS = f"INSERT INTO webhook_attempts ({_ATTEMPT_COLUMNS}) SELECT {_ATTEMPT_COLUMNS} FROM _attempts_0015"  # noqa: S608, E501
_LEDGER_KEY = ("chain_id", "block_hash", "log_index", "loan_id", "threshold")
_COPY_LEDGER_UP = (
    "INSERT INTO _risk_alert_deliveries_0015 ({kept}, recipient) "
    "SELECT {kept}, 'provider' FROM risk_alert_deliveries"
)
_OFFERED_TO_WALLETS = (
    "INSERT INTO risk_alert_deliveries (chain_id, block_hash, log_index, loan_id, threshold, "
    "recipient, provider_id, wallet, delivery_id, created_at) "
    "SELECT d.chain_id, d.block_hash, d.log_index, d.loan_id, d.threshold, 'wallet', NULL, "
    "a.borrower, NULL, d.created_at FROM risk_alert_deliveries d LEFT JOIN risk_alerts a "
    "ON a.chain_id = d.chain_id AND a.block_hash = d.block_hash AND a.log_index = d.log_index "
    "AND a.loan_id = d.loan_id AND a.threshold = d.threshold WHERE d.recipient = 'provider'"
)
_COPY_LEDGER_DOWN = (
    "INSERT INTO _risk_alert_deliveries_0015 ({kept}) SELECT {kept} FROM risk_alert_deliveries"
)


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    op.create_table(
        "wallet_webhook_endpoints",
        sa.Column("wallet", sa.String(length=42), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("previous_secret", sa.Text(), nullable=True),
        sa.Column("previous_secret_expires_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("wallet", name=op.f("pk_wallet_webhook_endpoints")),
    )
    _subscribers_upgrade()
    _ledger_upgrade()
    # Alerts already final were offered once, before wallets had webhooks: record them as
    # offered to their wallets too, or a rebuild would send months-old alerts to a wallet.
    op.execute(_OFFERED_TO_WALLETS)
    op.add_column("risk_alerts", sa.Column("price", sa.String(length=80), nullable=True))


def _subscribers_upgrade() -> None:
    sqlite = _is_sqlite()
    if sqlite:
        op.execute(_SAVE_ATTEMPTS)
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("wallet", sa.String(length=42), nullable=True))
        batch.alter_column("provider_id", existing_type=sa.BigInteger(), nullable=True)
        batch.create_check_constraint(
            op.f("ck_webhook_deliveries_one_subscriber"), sa.text(_ONE_SUBSCRIBER)
        )
    op.create_index("ix_webhook_deliveries_wallet", "webhook_deliveries", ["wallet", "id"])
    with op.batch_alter_table("webhook_attempts") as batch:
        batch.add_column(sa.Column("wallet", sa.String(length=42), nullable=True))
        batch.alter_column("provider_id", existing_type=sa.BigInteger(), nullable=True)
    if sqlite:
        _restore_attempts()


def _restore_attempts() -> None:
    op.execute("DELETE FROM webhook_attempts")
    op.execute(_RESTORE_ATTEMPTS)
    op.execute("DROP TABLE _attempts_0015")


def _ledger_columns(*, recipient: bool) -> list[sa.Column[Any]]:
    columns: list[sa.Column[Any]] = [
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("loan_id", sa.String(length=78), nullable=False),
        sa.Column("threshold", sa.String(length=16), nullable=False),
    ]
    if recipient:
        columns.append(sa.Column("recipient", sa.String(length=8), nullable=False))
    columns.append(sa.Column("provider_id", sa.BigInteger(), nullable=True))
    if recipient:
        columns.append(sa.Column("wallet", sa.String(length=42), nullable=True))
    columns += [
        sa.Column("delivery_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    ]
    return columns


def _rebuild_ledger_sqlite(*, recipient: bool) -> None:
    """SQLite: copy the ledger into a table with the new key (nothing references it)."""
    key = [*_LEDGER_KEY, "recipient"] if recipient else list(_LEDGER_KEY)
    op.create_table(
        "_risk_alert_deliveries_0015",
        *_ledger_columns(recipient=recipient),
        sa.PrimaryKeyConstraint(*key, name=op.f("pk_risk_alert_deliveries")),
    )
    kept = (
        "chain_id, block_hash, log_index, loan_id, threshold, provider_id, delivery_id, created_at"
    )
    if recipient:
        op.execute(_COPY_LEDGER_UP.format(kept=kept))
    else:
        op.execute(_COPY_LEDGER_DOWN.format(kept=kept))
    op.drop_table("risk_alert_deliveries")
    op.rename_table("_risk_alert_deliveries_0015", "risk_alert_deliveries")


def _ledger_upgrade() -> None:
    if _is_sqlite():
        _rebuild_ledger_sqlite(recipient=True)
        return
    table = "risk_alert_deliveries"
    op.add_column(
        table,
        sa.Column("recipient", sa.String(length=8), nullable=False, server_default="provider"),
    )
    op.add_column(table, sa.Column("wallet", sa.String(length=42), nullable=True))
    op.alter_column(table, "recipient", server_default=None)
    op.drop_constraint(op.f("pk_risk_alert_deliveries"), table, type_="primary")
    op.create_primary_key(op.f("pk_risk_alert_deliveries"), table, [*_LEDGER_KEY, "recipient"])


def downgrade() -> None:
    op.drop_column("risk_alerts", "price")
    op.execute("DELETE FROM risk_alert_deliveries WHERE recipient <> 'provider'")
    if _is_sqlite():
        _rebuild_ledger_sqlite(recipient=False)
    else:
        table = "risk_alert_deliveries"
        op.drop_constraint(op.f("pk_risk_alert_deliveries"), table, type_="primary")
        op.drop_column(table, "wallet")
        op.drop_column(table, "recipient")
        op.create_primary_key(op.f("pk_risk_alert_deliveries"), table, [*_LEDGER_KEY])
    op.execute("DELETE FROM webhook_attempts WHERE provider_id IS NULL")
    op.execute("DELETE FROM webhook_deliveries WHERE provider_id IS NULL")
    op.drop_index("ix_webhook_deliveries_wallet", table_name="webhook_deliveries")
    sqlite = _is_sqlite()
    if sqlite:
        op.execute(_SAVE_ATTEMPTS)
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_constraint(op.f("ck_webhook_deliveries_one_subscriber"), type_="check")
        batch.alter_column("provider_id", existing_type=sa.BigInteger(), nullable=False)
        batch.drop_column("wallet")
    with op.batch_alter_table("webhook_attempts") as batch:
        batch.alter_column("provider_id", existing_type=sa.BigInteger(), nullable=False)
        batch.drop_column("wallet")
    if sqlite:
        _restore_attempts()
    op.drop_table("wallet_webhook_endpoints")
