"""Named exclusive locks that a crashed holder cannot leave behind.

Periodic tasks that talk to a chain (anchoring the receipts log, ingesting a chain's logs) must
run one at a time per resource, across every worker process and machine. A lock row with an
expiry would either expire under a slow but alive holder or outlive a dead one; both are wrong.
Instead the lock lives exactly as long as its holder:

* PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) on a connection held for the
  whole critical section. It is released when the connection closes, including when the server
  notices that a `kill -9`ed worker's socket is gone.
* SQLite (the embedded default, one machine): an `flock` on a file beside the database. The
  kernel releases it when the process dies, however it dies.

Acquisition never waits: a second runner learns at once that the work is being done and skips
(the next beat tick tries again), so no worker slot is ever spent waiting on another.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text


def lock_key(name: str) -> int:
    """The signed 64-bit advisory-lock key of `name` (stable across processes and versions)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def try_exclusive(engine: Engine, name: str) -> Iterator[bool]:
    """Yield True while this process holds the lock `name`, or False at once if another does.

    The body runs in both cases so callers can report "skipped"; it must do nothing guarded when
    it got False.
    """
    if engine.dialect.name == "postgresql":
        with _postgres_advisory(engine, name) as held:
            yield held
    elif engine.dialect.name == "sqlite":
        with _file_lock(_sqlite_lock_path(engine, name)) as held:
            yield held
    else:  # pragma: no cover - create_db_engine refuses other databases
        raise ValueError(f"no exclusive lock for the {engine.dialect.name} dialect")


@contextmanager
def _postgres_advisory(engine: Engine, name: str) -> Iterator[bool]:
    key = lock_key(name)
    # AUTOCOMMIT: the lock is session-level and must not pin an open transaction (which would
    # hold back vacuum) for as long as the work takes.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        held = bool(
            connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
        )
        try:
            yield held
        finally:
            if held:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})


def _sqlite_lock_path(engine: Engine, name: str) -> Path:
    database = engine.url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        raise ValueError("exclusive locks on SQLite need a database file, not memory")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return Path(database).expanduser().resolve().with_name(f"{Path(database).name}.{safe}.lock")


@contextmanager
def _file_lock(path: Path) -> Iterator[bool]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
