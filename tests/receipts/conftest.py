"""Real databases for the receipts log: a freshly migrated one per test.

PostgreSQL when `DATABASE_URL` points at one (a throwaway `credagg_test_<random>` database next
to it, dropped afterwards), else a SQLite file: the same switch as `tests/backend/conftest.py`.
The log is global and append-only, so each test gets its own database rather than sharing one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from backend.config import Settings
from backend.db import SessionFactory, create_db_engine, create_session_factory, migrate
from backend.receipts.models import ReceiptKind
from backend.receipts.service import ReceiptDraft, signer_from_settings
from backend.receipts.signing import ReceiptSigner
from tests.backend.conftest import fresh_postgres_database, is_postgres


@pytest.fixture
def receipts_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for name in list(os.environ):
        if name.startswith("CREDAGG_"):
            monkeypatch.delenv(name)
    base = os.environ.get("DATABASE_URL")
    if is_postgres(base):
        assert base is not None
        with fresh_postgres_database(base) as url:
            settings = Settings(_env_file=None, environment="test", database_url=url)
            migrate(settings)
            yield settings
    else:
        url = f"sqlite:///{tmp_path / 'receipts.db'}"
        settings = Settings(_env_file=None, environment="test", database_url=url)
        migrate(settings)
        yield settings


@pytest.fixture
def engine(receipts_settings: Settings) -> Iterator[Engine]:
    engine = create_db_engine(receipts_settings)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> SessionFactory:
    return create_session_factory(engine)


@pytest.fixture
def signer(receipts_settings: Settings) -> ReceiptSigner:
    return signer_from_settings(receipts_settings)


def create_draft(
    *,
    kind: ReceiptKind = ReceiptKind.REPAYMENT,
    tenant: str = "provider:acme",
    subject: str = "loan:1",
    payload: Mapping[str, Any] | None = None,
    corrects_id: Any = None,
) -> ReceiptDraft:
    """A valid draft; override what the test is about."""
    return ReceiptDraft(
        kind=kind,
        tenant=tenant,
        subject=subject,
        payload=payload if payload is not None else {"amount": "1000000", "token": "USDC"},
        corrects_id=corrects_id,
    )
