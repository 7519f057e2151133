"""Alembic: upgrade head on a fresh database produces exactly the tables the code defines."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from backend.config import Settings
from backend.db import Base, create_db_engine, import_all_models
from backend.migrate import MigrationScripts, current_revision, upgrade_head
from chain_adapters.evm.store import chain_metadata

from .conftest import ROOT, fresh_postgres_database, is_postgres

EXPECTED_TABLES = {
    "alembic_version",
    "worker_heartbeats",
    "chain_nonces",
    "chain_transactions",
    "receipts",
    "merkle_nodes",
    "merkle_log_state",
    "log_checkpoints",
    "receipt_anchors",
    "providers",
    "siwe_nonces",
    "wallet_sessions",
    "api_keys",
    "audit_entries",
    "audit_head",
    "provider_profiles",
    "provider_rate_cards",
    "provider_webhook_endpoints",
    "webhook_deliveries",
    "webhook_attempts",
    "wallet_webhook_endpoints",
    "idempotency_keys",
    "credit_wallet_kyc",
    "credit_defi_pools",
    "credit_requests",
    "credit_quotes",
    "credit_provider_outcomes",
    "credit_provider_answers",
    "credit_circuit_breakers",
    "credit_loans",
    "watcher_cursors",
    "watcher_blocks",
    "watcher_logs",
    "watcher_targets",
    "watcher_anchored",
    "watcher_final_anchored",
    "risk_loan_effects",
    "risk_price_effects",
    "risk_asset_configs",
    "risk_alerts",
    "risk_alert_deliveries",
    "billing_originations",
    "billing_block_times",
    "billing_subscriptions",
    "billing_statements",
}
HEAD = "0017_risk_indexes"
LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def assert_schema_matches_models(settings: Settings) -> None:
    import_all_models()
    engine = create_db_engine(settings)
    try:
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) == EXPECTED_TABLES
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, [Base.metadata, chain_metadata])
            assert differences == [], differences
            assert MigrationScripts().state(connection).at_head
    finally:
        engine.dispose()


def test_upgrade_head_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None, environment="test", database_url=f"sqlite:///{tmp_path / 'fresh.db'}"
    )
    assert current_revision(settings) is None
    assert upgrade_head(settings) == MigrationScripts().heads[0]
    assert_schema_matches_models(settings)
    assert upgrade_head(settings) == HEAD  # running it again is a no-op


@pytest.fixture
def postgres_base_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if is_postgres(url):
        assert url is not None
        return url
    engine = create_engine(LOCAL_POSTGRES, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "no server here"
        pytest.skip(f"DATABASE_URL is not PostgreSQL and {LOCAL_POSTGRES} is unreachable: {exc}")
    finally:
        engine.dispose()
    return LOCAL_POSTGRES


@pytest.fixture
def fresh_postgres(postgres_base_url: str) -> Iterator[str]:
    with fresh_postgres_database(postgres_base_url) as url:
        yield url


@pytest.mark.postgres
def test_upgrade_head_and_back_on_a_fresh_postgres_database(fresh_postgres: str) -> None:
    from alembic import command

    from backend.migrate import alembic_config

    settings = Settings(_env_file=None, environment="test", database_url=fresh_postgres)
    assert upgrade_head(settings) == HEAD
    assert_schema_matches_models(settings)

    command.downgrade(alembic_config(settings), "base")
    engine = create_db_engine(settings)
    try:
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()


def test_alembic_command_line_uses_the_packaged_ini(tmp_path: Path) -> None:
    database = tmp_path / "cli.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDAGG_")}
    env.update(DATABASE_URL=f"sqlite:///{database}", CREDAGG_ENVIRONMENT="test")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "alembic",
            "-c",
            str(ROOT / "backend/migrations/alembic.ini"),
            "upgrade",
            "head",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    settings = Settings(_env_file=None, environment="test", database_url=f"sqlite:///{database}")
    assert current_revision(settings) == HEAD
