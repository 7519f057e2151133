"""Engine, sessions and the unit-of-work boundaries of the backend.

Services only `flush()`. Exactly two places commit or roll back:

* `get_db_session`, the FastAPI dependency (`SessionDep`): commit when the endpoint returns,
  roll back when it raises. It is declared with `scope="function"` so the commit runs *before*
  the response is sent: a failed commit becomes an error response instead of a 200 for data that
  was never stored.
* `session_scope`, used by Celery tasks (see `backend.worker`), with the same rule.

SQLite (the embedded default) is configured for a laptop running the API, a worker and a watcher
at once: WAL so readers never block the writer, foreign keys enforced, a busy timeout instead of
immediate "database is locked", and `BEGIN IMMEDIATE` for every transaction. pysqlite's own
transaction handling starts transactions late (only before DML), which both breaks SAVEPOINTs and
lets two connections that read first deadlock when they both try to write (SQLite then fails one
at once, without waiting). Taking the write lock at BEGIN serialises writers through the busy
timeout instead, the same choice Rails 8 made for its SQLite default.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from backend.config import Settings

#: Deterministic constraint names, so migrations can address (and batch-alter) constraints on
#: SQLite and PostgreSQL alike.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every backend table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


SessionFactory = sessionmaker[Session]


def create_db_engine(settings: Settings) -> Engine:
    """Build the engine for `settings.effective_database_url` (SQLite or PostgreSQL)."""
    url = make_url(settings.effective_database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    if url.get_backend_name() == "postgresql":
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            connect_args={"connect_timeout": 5, "application_name": "credagg"},
        )
    raise ValueError(
        f"unsupported database {url.get_backend_name()!r} in DATABASE_URL; "
        "use sqlite:///path.db or postgresql+psycopg://user@host/db"
    )


def _sqlite_engine(url: URL, *, busy_timeout_ms: int) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _configure_connection(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (see the module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_session_factory(engine: Engine) -> SessionFactory:
    """Sessions that keep loaded attributes after commit (responses are built after it).

    `close_resets_only=False`: a closed session stays closed. When the request timeout abandons a
    sync endpoint, its session is rolled back and closed while the endpoint's thread may still
    run; with the default it would silently begin a new transaction that nobody commits or
    closes (on SQLite, holding the only write lock). Now that thread gets an error instead.
    """
    return sessionmaker(
        bind=engine, expire_on_commit=False, autoflush=False, close_resets_only=False
    )


@contextmanager
def session_scope(factory: SessionFactory) -> Iterator[Session]:
    """One unit of work outside HTTP (Celery tasks, CLI): commit on success, else roll back."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_db_session(request: Request, response: Response) -> Iterator[Session]:
    """FastAPI dependency: one session per request, committed when the endpoint succeeds.

    A state-changing request (POST, PUT, PATCH, DELETE) appends its audit entry in this same
    transaction, just before the commit (`backend.audit.recording`): a change never commits
    without its entry, and the audit head stays locked only for the commit itself.
    """
    from backend.audit.recording import RequestAudit  # backend.audit imports this module

    factory: SessionFactory = request.app.state.session_factory
    audit = RequestAudit(request, response)
    with audit.transaction(), session_scope(factory) as session:
        yield session
        audit.append_before_commit(session)


#: The request's session. A dependency *with yield* that takes a `SessionDep` must be declared
#: with `scope="function"` as well (FastAPI refuses a request-scoped one depending on it).
SessionDep = Annotated[Session, Depends(get_db_session, scope="function")]


def import_all_models() -> list[str]:
    """Import `backend.<domain>.models` for every domain, so `Base.metadata` knows all tables.

    Alembic's env.py and test fixtures call this; the app itself imports models through the
    routers that use them.
    """
    import backend

    imported: list[str] = []
    for info in pkgutil.iter_modules(backend.__path__):
        if not info.ispkg:
            continue
        name = f"backend.{info.name}.models"
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
            imported.append(name)
    return imported


def migrate(settings: Settings) -> str | None:
    """Bring the database to the newest schema (`alembic upgrade head`); return its revision.

    The CLI's `credagg db upgrade` and the dev stack call this before starting services.
    """
    from backend.migrate import upgrade_head  # imports this module: keep the import lazy

    return upgrade_head(settings)
