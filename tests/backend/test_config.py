"""Settings: environment names, the embedded default, and refusing public secrets."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest
from pydantic import ValidationError

from backend.config import DEV_RECEIPT_SIGNING_KEY, DEV_SECRET_KEY, Settings


def strong_secrets() -> dict[str, str]:
    return {
        "secret_key": secrets.token_urlsafe(32),
        "session_secret": secrets.token_urlsafe(32),
        "receipt_signing_key": secrets.token_hex(32),
    }


def test_production_refuses_default_secrets_and_names_the_variables() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Settings(_env_file=None, environment="production")
    message = str(excinfo.value)
    for variable in ("CREDAGG_SECRET_KEY", "CREDAGG_SESSION_SECRET", "CREDAGG_RECEIPT_SIGNING_KEY"):
        assert variable in message
    assert "development default" in message


def test_production_refuses_one_default_secret_among_good_ones() -> None:
    values = strong_secrets() | {"receipt_signing_key": DEV_RECEIPT_SIGNING_KEY}
    with pytest.raises(ValidationError) as excinfo:
        Settings(_env_file=None, environment="production", **values)
    message = str(excinfo.value)
    assert "CREDAGG_RECEIPT_SIGNING_KEY" in message
    assert "CREDAGG_SECRET_KEY" not in message


def test_production_refuses_short_and_reused_secrets() -> None:
    with pytest.raises(ValidationError, match="CREDAGG_SECRET_KEY is shorter than 32"):
        Settings(
            _env_file=None, environment="production", **(strong_secrets() | {"secret_key": "x"})
        )
    shared = secrets.token_urlsafe(32)
    with pytest.raises(ValidationError, match="must differ from CREDAGG_SECRET_KEY"):
        Settings(
            _env_file=None,
            environment="production",
            **(strong_secrets() | {"secret_key": shared, "session_secret": shared}),
        )


def test_production_accepts_fresh_secrets_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = strong_secrets()
    monkeypatch.setenv("CREDAGG_ENVIRONMENT", "production")
    monkeypatch.setenv("CREDAGG_SECRET_KEY", values["secret_key"])
    monkeypatch.setenv("CREDAGG_SESSION_SECRET", values["session_secret"])
    monkeypatch.setenv("CREDAGG_RECEIPT_SIGNING_KEY", values["receipt_signing_key"])
    monkeypatch.setenv(
        "CREDAGG_DATA_ENCRYPTION_KEYS", "k1:" + base64.b64encode(secrets.token_bytes(32)).decode()
    )
    monkeypatch.setenv("CREDAGG_DATA_ENCRYPTION_ACTIVE_KEY", "k1")
    settings = Settings(_env_file=None)
    assert settings.environment == "production"
    assert settings.secret_key.get_secret_value() == values["secret_key"]


@pytest.mark.parametrize("environment", ["development", "test"])
def test_development_and_test_accept_the_defaults(environment: str) -> None:
    settings = Settings(_env_file=None, environment=environment)
    assert settings.secret_key.get_secret_value() == DEV_SECRET_KEY


def test_secrets_never_show_in_repr_or_summary() -> None:
    settings = Settings(
        _env_file=None, database_url="postgresql://app:hunter2@db.internal:5432/credagg"
    )
    assert DEV_SECRET_KEY not in repr(settings)
    summary = str(settings.safe_summary())
    assert "hunter2" not in summary
    assert "app:***@db.internal" in summary


def test_receipt_key_must_be_a_hex_seed() -> None:
    with pytest.raises(ValidationError, match="64 hex characters"):
        Settings(_env_file=None, receipt_signing_key="not-a-key")


def test_database_and_redis_urls_are_read_under_their_conventional_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db:5432/app")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/2")
    monkeypatch.setenv("CREDAGG_DATABASE_URL", "sqlite:///ignored.db")
    settings = Settings(_env_file=None)
    # psycopg 3 is the driver whatever spelling the platform uses
    assert settings.effective_database_url == "postgresql+psycopg://u@db:5432/app"
    assert settings.redis_url == "redis://cache:6379/2"
    assert settings.celery_broker_url == "redis://cache:6379/2"
    assert settings.celery_result_backend == "redis://cache:6379/2"
    assert not settings.embedded_broker
    assert not settings.is_sqlite


def test_embedded_default_lives_under_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=None)
    data_dir = tmp_path.resolve() / ".credagg"
    assert settings.data_dir == data_dir
    assert settings.effective_database_url == f"sqlite:///{data_dir / 'credagg.db'}"
    assert settings.is_sqlite
    assert settings.embedded_broker
    assert settings.celery_broker_url == f"sqla+sqlite:///{data_dir / 'celery-broker.db'}"
    assert settings.celery_result_backend == f"db+sqlite:///{data_dir / 'celery-results.db'}"

    monkeypatch.setenv("CREDAGG_DATA_DIR", str(tmp_path / "elsewhere"))
    assert Settings(_env_file=None).data_dir == tmp_path / "elsewhere"


def test_cors_origins_accept_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDAGG_CORS_ORIGINS", "https://a.example, https://b.example")
    assert Settings(_env_file=None).cors_origins == ["https://a.example", "https://b.example"]
    monkeypatch.setenv("CREDAGG_CORS_ORIGINS", '["https://c.example"]')
    assert Settings(_env_file=None).cors_origins == ["https://c.example"]


def test_unknown_environment_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, environment="staging")
