"""Watcher backfill speed and watch-list history (issue 6).

`watcher_targets`: the addresses whose logs are stored from a chain's start block to its cursor
(a target added later is backfilled first: backend/watcher/history.py).

Speed: one set-based log check per statement, not one per row.

Every effect table references its log (chain_id, block_hash, log_index) in `watcher_logs` with
ON DELETE CASCADE. PostgreSQL checks such a foreign key with one SPI lookup plus a row lock per
inserted row; EXPLAIN ANALYZE of 100,000 effect rows: 375 ms to insert, 570 ms in the FK
trigger, for each of the two effect tables a backfill writes per log. `DEFERRABLE` does not help
(the same per-row checks run at commit).

So on PostgreSQL the per-row *check* triggers of these foreign keys are disabled and replaced by
one AFTER ... FOR EACH STATEMENT trigger per table that joins the statement's new rows (a
transition table) to `watcher_logs` once, takes the same FOR KEY SHARE locks a foreign key takes
(a concurrent delete of a referenced log still waits for us) and raises `foreign_key_violation`
(SQLSTATE 23503, as the foreign key would) unless every new row found its log; measured about
90 ms per 100,000 rows. The constraint itself stays: ON DELETE CASCADE (the part reorgs rely on)
is unchanged, the schema matches the models, and `pg_dump` restores a plain foreign key.

Disabling a foreign key's internal trigger needs a superuser. When the migrating role is not
one, this revision changes nothing and says so: everything stays correct, only slower. SQLite
keeps its foreign keys as they are. Tables that gain a log foreign key after this revision get
the same treatment by calling `use_statement_log_checks` from their migration.

Revision ID: 0016_watcher_speed
Revises: 0015_wallet_webhooks
Create Date: 2026-11-23
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import text
from sqlalchemy.engine import Connection

revision: str = "0016_watcher_speed"
down_revision: str | Sequence[str] | None = "0015_wallet_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

logger = logging.getLogger("alembic.runtime.migration")

LOG_KEY = ("chain_id", "block_hash", "log_index")
FUNCTION = "watcher_check_effect_logs"

_CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION watcher_check_effect_logs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    expected bigint;
    found bigint;
BEGIN
    -- MATCH SIMPLE, as the foreign key: a row with a NULL key column references nothing.
    SELECT count(*) INTO expected FROM new_rows n
    WHERE n.chain_id IS NOT NULL AND n.block_hash IS NOT NULL AND n.log_index IS NOT NULL;
    SELECT count(*) INTO found FROM (
        SELECT 1 FROM watcher_logs l
        JOIN new_rows n ON l.chain_id = n.chain_id AND l.block_hash = n.block_hash
            AND l.log_index = n.log_index
        FOR KEY SHARE OF l
    ) AS locked;
    IF found <> expected THEN
        RAISE EXCEPTION USING
            ERRCODE = 'foreign_key_violation',
            MESSAGE = format(
                'insert or update on table "%s" violates foreign key constraint "%s"',
                TG_TABLE_NAME, TG_ARGV[0]),
            DETAIL = format(
                '%s of %s new rows have no (chain_id, block_hash, log_index) in "watcher_logs".',
                expected - found, expected);
    END IF;
    RETURN NULL;
END
$$
"""


def _log_foreign_keys(connection: Connection) -> list[tuple[str, str]]:
    """(table, constraint) of every foreign key on exactly the log key into watcher_logs."""
    rows = connection.exec_driver_sql(
        """
        SELECT c.conrelid::regclass::text, c.conname,
               array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n
                     ORDER BY k.i)
        FROM pg_constraint c
        WHERE c.contype = 'f' AND c.confrelid = 'watcher_logs'::regclass
        ORDER BY 1, 2
        """
    ).all()
    return [(str(table), str(name)) for table, name, columns in rows if tuple(columns) == LOG_KEY]


def _is_superuser(connection: Connection) -> bool:
    return bool(
        connection.exec_driver_sql(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).scalar()
    )


def _check_triggers(connection: Connection, table: str, constraint: str) -> list[str]:
    """The foreign key's per-row check triggers (on the referencing table, not the actions)."""
    rows = connection.execute(
        text("""
        SELECT t.tgname FROM pg_trigger t JOIN pg_constraint c ON c.oid = t.tgconstraint
        WHERE c.conname = :constraint AND t.tgrelid = CAST(:table AS regclass)
          AND c.conrelid = t.tgrelid
        ORDER BY t.tgname
        """),
        {"constraint": constraint, "table": table},
    ).all()
    return [str(r[0]) for r in rows]


def use_statement_log_checks(connection: Connection, table: str, constraint: str) -> None:
    """Swap `constraint`'s per-row insert/update checks on `table` for statement-level ones."""
    for trigger in _check_triggers(connection, table, constraint):
        connection.exec_driver_sql(f'ALTER TABLE "{table}" DISABLE TRIGGER "{trigger}"')
    for event in ("insert", "update"):
        connection.exec_driver_sql(
            f'CREATE TRIGGER "{table}_log_check_{event}" AFTER {event.upper()} ON "{table}" '
            "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
            f"EXECUTE FUNCTION {FUNCTION}('{constraint}')"
        )


def use_row_log_checks(connection: Connection, table: str, constraint: str) -> None:
    """Undo `use_statement_log_checks`."""
    for event in ("insert", "update"):
        connection.exec_driver_sql(
            f'DROP TRIGGER IF EXISTS "{table}_log_check_{event}" ON "{table}"'
        )
    for trigger in _check_triggers(connection, table, constraint):
        connection.exec_driver_sql(f'ALTER TABLE "{table}" ENABLE TRIGGER "{trigger}"')


def upgrade() -> None:
    op.create_table(
        "watcher_targets",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("since_block", sa.BigInteger(), nullable=False),
        sa.Column("history_logs", sa.BigInteger(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "address", name=op.f("pk_watcher_targets")),
    )
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        return
    if not _is_superuser(connection):
        logger.warning(
            "0016_watcher_speed: role is not a superuser; effect foreign keys keep their "
            "per-row checks (correct, slower backfill). Run this revision as a superuser to "
            "switch them to statement-level checks."
        )
        return
    connection.execute(text(_CREATE_FUNCTION))
    for table, constraint in _log_foreign_keys(connection):
        use_statement_log_checks(connection, table, constraint)


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql" and _is_superuser(connection):
        for table, constraint in _log_foreign_keys(connection):
            use_row_log_checks(connection, table, constraint)
        connection.exec_driver_sql(f"DROP FUNCTION IF EXISTS {FUNCTION}()")
    op.drop_table("watcher_targets")
