"""Real databases and a real app for the audit log: a freshly migrated database per test.

PostgreSQL when `DATABASE_URL` points at one (a throwaway `credagg_test_<random>` database next
to it, dropped afterwards), else a SQLite file: the same switch as `tests/backend/conftest.py`.
The audit log is global and append-only, so each test gets its own database: assertions about
"the whole log" (seq 1..n, the head) then hold whatever other tests did.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from backend.app import create_app
from backend.audit.chain import Entry
from backend.audit.service import AuditRecord, append, iter_entries
from backend.config import Settings
from backend.db import (
    SessionFactory,
    create_db_engine,
    create_session_factory,
    migrate,
    session_scope,
)
from tests.audit.endpoints import router as test_router
from tests.backend.conftest import fresh_postgres_database, is_postgres


@pytest.fixture
def audit_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for name in list(os.environ):
        if name.startswith("CREDAGG_"):
            monkeypatch.delenv(name)
    base = os.environ.get("DATABASE_URL")
    common: dict[str, Any] = {"environment": "test", "data_dir": tmp_path / "data"}
    if is_postgres(base):
        assert base is not None
        with fresh_postgres_database(base) as url:
            settings = Settings(_env_file=None, database_url=url, **common)
            migrate(settings)
            yield settings
    else:
        url = f"sqlite:///{tmp_path / 'audit.db'}"
        settings = Settings(_env_file=None, database_url=url, **common)
        migrate(settings)
        yield settings


@pytest.fixture
def engine(audit_settings: Settings) -> Iterator[Engine]:
    engine = create_db_engine(audit_settings)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> SessionFactory:
    return create_session_factory(engine)


def build_app(settings: Settings) -> FastAPI:
    """The real app for `settings`, plus the test-only endpoints of `tests.audit.endpoints`."""
    app = create_app(settings)
    app.include_router(test_router)
    return app


@pytest.fixture
def client(audit_settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(audit_settings), raise_server_exceptions=False) as test_client:
        yield test_client


def entries(factory: SessionFactory) -> list[Entry]:
    return list(iter_entries(factory))


def widget_count(factory: SessionFactory, nonce: str) -> int:
    """Rows the test endpoints wrote for `nonce` (they write `worker_heartbeats` rows)."""
    with session_scope(factory) as session:
        statement = text("SELECT count(*) FROM worker_heartbeats WHERE nonce = :nonce")
        return int(session.execute(statement, {"nonce": nonce}).scalar_one())


def create_entries(factory: SessionFactory, count: int, *, actor: str = "auditor:test") -> None:
    """Append `count` entries, one transaction each, as requests would."""
    for number in range(count):
        with session_scope(factory) as session:
            append(
                session,
                AuditRecord(
                    actor=actor,
                    action="POST /v1/things",
                    resource=f"/v1/things/{number}",
                    request_id=f"req-{number}",
                    status=201,
                ),
            )
