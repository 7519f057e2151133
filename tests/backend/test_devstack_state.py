"""The dev stack's embedded state is reset with its devnets, and an operator's database never."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from backend.config import Settings
from backend.devstack import forget_embedded_state


def _embedded(tmp_path: Path) -> Settings:
    # Explicit Nones: CI sets DATABASE_URL and REDIS_URL in the environment.
    return Settings(
        _env_file=None,
        environment="development",
        data_dir=tmp_path,
        database_url=None,
        redis_url=None,
    )


def test_embedded_database_and_broker_start_afresh(tmp_path: Path) -> None:
    settings = _embedded(tmp_path)
    engine = create_engine(settings.effective_database_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE credit_loans (id INTEGER)"))
    engine.dispose()
    settings.broker_db_path.write_bytes(b"queued tasks of old chains")
    Path(f"{settings.embedded_database_path}-wal").write_bytes(b"wal")
    keep = tmp_path / "deployments.json"
    keep.write_text("{}")

    assert forget_embedded_state(settings) is True

    assert not settings.embedded_database_path.exists()
    assert not Path(f"{settings.embedded_database_path}-wal").exists()
    assert not settings.broker_db_path.exists()
    assert keep.exists()  # only the database and broker go
    assert forget_embedded_state(settings) is False  # nothing left to forget


def test_a_database_url_is_never_touched(tmp_path: Path) -> None:
    elsewhere = tmp_path / "operator.db"
    settings = Settings(
        _env_file=None,
        environment="development",
        data_dir=tmp_path,
        database_url=f"sqlite:///{elsewhere}",
    )
    engine = create_engine(settings.effective_database_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE credit_loans (id INTEGER)"))
    engine.dispose()
    settings.embedded_database_path.write_bytes(b"not ours to delete either")

    assert forget_embedded_state(settings) is False

    assert elsewhere.exists()
    assert settings.embedded_database_path.exists()
