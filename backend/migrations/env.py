"""Alembic environment: the URL comes from `Settings`, the engine from `backend.db`.

Using the backend's own engine factory means migrations run with the same SQLite pragmas
(foreign keys, WAL, busy timeout) and the same PostgreSQL driver as the application.
`render_as_batch` is on for SQLite, whose ALTER TABLE cannot change or drop columns.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from backend.config import Settings, get_settings
from backend.db import Base, create_db_engine, import_all_models
from chain_adapters.evm.store import chain_metadata

config = context.config


def _settings() -> Settings:
    settings = config.attributes.get("settings")
    return settings if isinstance(settings, Settings) else get_settings()


def _target_metadata() -> list[MetaData]:
    """The backend's tables plus the chain adapters' (nonces, signed transactions).

    chain_adapters keeps its tables on its own `MetaData` so it never imports the backend; the
    backend's migrations own the schema of both.
    """
    import_all_models()
    return [Base.metadata, chain_metadata]


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=_target_metadata(),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit SQL to stdout (`alembic upgrade head --sql`) without a database connection."""
    settings = _settings()
    context.configure(
        url=settings.effective_database_url,
        target_metadata=_target_metadata(),
        literal_binds=True,
        render_as_batch=settings.is_sqlite,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        _configure(connection)
        return
    engine = create_db_engine(_settings())
    try:
        with engine.connect() as fresh:
            _configure(fresh)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
