"""Key rotation re-encrypts a real table's rows in batches: idempotent, resumable, non-blocking.

`kit_secrets` is a small table created for these tests in the session database (its own
MetaData, so the migrations' schema comparison never sees it) and dropped afterwards.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Column, Engine, Integer, MetaData, Table, Text, select, update
from typer.testing import CliRunner

from backend.cli import app as cli_app
from backend.config import DEV_DATA_ENCRYPTION_KEYS, Settings, get_settings
from backend.db import SessionFactory, create_db_engine, create_session_factory, session_scope
from backend.idempotency.models import IdempotencyKey
from backend.kit.crypto import FieldCipher, FieldContext, envelope_key_id
from backend.kit.crypto_rotation import (
    EncryptedColumn,
    encrypted_columns,
    reencrypt_column,
)
from tests.backend.conftest import SettingsFactory
from tests.kit.conftest import build_kit_app

METADATA = MetaData()
SECRETS = Table(
    "kit_secrets",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("contact", Text, nullable=True),
)
TARGET = EncryptedColumn(table="kit_secrets", column="contact")


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_db_engine(settings)
    METADATA.create_all(engine)
    try:
        yield engine
    finally:
        METADATA.drop_all(engine)
        engine.dispose()


@pytest.fixture
def factory(engine: Engine) -> SessionFactory:
    return create_session_factory(engine)


def context(row_id: int) -> FieldContext:
    return FieldContext("kit_secrets", "contact", row_id)


def seed(factory: SessionFactory, box: FieldCipher, count: int) -> dict[int, str]:
    plain = {row_id: f"person-{row_id}@example.com" for row_id in range(1, count + 1)}
    with session_scope(factory) as session:
        session.execute(
            SECRETS.insert(),
            [{"id": i, "contact": box.encrypt(text, context(i))} for i, text in plain.items()],
        )
        session.execute(SECRETS.insert(), [{"id": count + 1, "contact": None}])
    return plain


def stored(factory: SessionFactory) -> dict[int, Any]:
    with session_scope(factory) as session:
        return {row.id: row.contact for row in session.execute(select(SECRETS)).all()}


def test_rotation_re_encrypts_every_old_row_in_batches_and_is_idempotent(
    factory: SessionFactory,
) -> None:
    k1, k2 = os.urandom(32), os.urandom(32)
    old = FieldCipher({"k1": k1}, "k1")
    plain = seed(factory, old, 25)
    new = FieldCipher({"k1": k1, "k2": k2}, "k2")
    # A row written after the switch is already under k2 and must be left alone.
    with session_scope(factory) as session:
        session.execute(
            SECRETS.insert(), [{"id": 100, "contact": new.encrypt("late", context(100))}]
        )
    untouched = stored(factory)[100]

    report = reencrypt_column(factory, new, TARGET, batch_size=7)

    assert (report.reencrypted, report.batches, report.failures) == (25, 4, [])
    rows = stored(factory)
    assert rows[26] is None and rows[100] == untouched
    only_k2 = FieldCipher({"k2": k2}, "k2")  # k1 could now be removed
    for row_id, text in plain.items():
        assert envelope_key_id(rows[row_id]) == "k2"
        assert only_k2.decrypt(rows[row_id], context(row_id)) == text

    again = reencrypt_column(factory, new, TARGET, batch_size=7)
    assert (again.reencrypted, again.batches) == (0, 0)
    assert stored(factory) == rows


def test_rotation_reports_rows_it_cannot_decrypt_and_rotates_the_rest(
    factory: SessionFactory,
) -> None:
    k1, k2 = os.urandom(32), os.urandom(32)
    old = FieldCipher({"k1": k1}, "k1")
    seed(factory, old, 10)
    rows = stored(factory)
    with session_scope(factory) as session:  # row 3 now holds row 4's ciphertext
        session.execute(update(SECRETS).where(SECRETS.c.id == 3).values(contact=rows[4]))
    new = FieldCipher({"k1": k1, "k2": k2}, "k2")

    first = reencrypt_column(factory, new, TARGET, batch_size=1_000_000)
    assert first.reencrypted == 9
    assert len(first.failures) == 1 and "row 3" in first.failures[0]
    resumed = reencrypt_column(factory, new, TARGET, batch_size=2)
    assert resumed.reencrypted == 0 and len(resumed.failures) == 1  # only the bad row is left
    assert envelope_key_id(stored(factory)[3]) == "k1"  # left as it was, for an operator


def test_rotation_after_a_partial_run_finishes_the_rest(factory: SessionFactory) -> None:
    k1, k2 = os.urandom(32), os.urandom(32)
    plain = seed(factory, FieldCipher({"k1": k1}, "k1"), 12)
    new = FieldCipher({"k1": k1, "k2": k2}, "k2")
    rows = stored(factory)
    with session_scope(factory) as session:  # a previous run rotated rows 1-5, then died
        for row_id in range(1, 6):
            session.execute(
                update(SECRETS)
                .where(SECRETS.c.id == row_id)
                .values(contact=new.reencrypt(rows[row_id], context(row_id)))
            )
    report = reencrypt_column(factory, new, TARGET, batch_size=4)
    assert report.reencrypted == 7 and report.batches == 2
    final = stored(factory)
    assert all(envelope_key_id(final[i]) == "k2" for i in plain)


def test_the_cli_rotates_stored_idempotent_responses_and_replays_still_work(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: responses stored under the dev key, `credagg keys rotate-data-key` with a new
    active key, then an app on the new keyring replays them."""
    assert ("idempotency_keys", "response_body") in {
        (c.table, c.column) for c in encrypted_columns()
    }
    before = make_settings()
    new_key = base64.b64encode(os.urandom(32)).decode()
    keyring = f"{DEV_DATA_ENCRYPTION_KEYS},k2:{new_key}"
    after = make_settings(data_encryption_keys=keyring, data_encryption_active_key="k2")
    key, nonce = f"rotate-{uuid.uuid4()}", uuid.uuid4().hex
    payload = {"nonce": nonce, "amount": 11}
    with TestClient(build_kit_app(before)) as api:
        original = api.post("/test-kit/orders", json=payload, headers={"Idempotency-Key": key})
    assert original.status_code == 201

    monkeypatch.setenv("DATABASE_URL", before.effective_database_url)
    monkeypatch.setenv("CREDAGG_ENVIRONMENT", "test")
    monkeypatch.setenv("CREDAGG_DATA_DIR", str(before.data_dir))
    monkeypatch.setenv("CREDAGG_DATA_ENCRYPTION_KEYS", keyring)
    monkeypatch.setenv("CREDAGG_DATA_ENCRYPTION_ACTIVE_KEY", "k2")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli_app, ["keys", "rotate-data-key", "--batch-size", "3"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "idempotency_keys.response_body:" in result.output
    assert "under 'k2'" in result.output

    engine = create_db_engine(after)
    try:
        with session_scope(create_session_factory(engine)) as session:
            body = session.execute(
                select(IdempotencyKey.response_body).where(IdempotencyKey.key == key)
            ).scalar_one()
    finally:
        engine.dispose()
    assert envelope_key_id(body) == "k2"

    with TestClient(build_kit_app(after)) as api:
        replay = api.post("/test-kit/orders", json=payload, headers={"Idempotency-Key": key})
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == original.json()
