"""Throwaway PostgreSQL databases next to a given server, for tests and benchmarks.

The database named in `DATABASE_URL` is shared (other suites, other benchmarks), so whatever
needs a clean schema creates `credagg_test_<random>` on the same server and drops it afterwards.
Lives in the package (not under tests/) so scripts can use it without importing test code.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from backend.config import Settings

__all__ = ["fresh_postgres_database", "is_postgres", "normalised"]


def is_postgres(url: str | None) -> bool:
    """Whether `url` names a PostgreSQL server (any driver spelling)."""
    return url is not None and url.split(":", 1)[0].startswith("postgres")


def normalised(url: str) -> str:
    """The URL as Settings would use it (psycopg 3 driver)."""
    return Settings(_env_file=None, database_url=url).effective_database_url


@contextmanager
def fresh_postgres_database(base_url: str) -> Iterator[str]:
    """Create `credagg_test_<random>` on the server of `base_url`; drop it afterwards."""
    base = make_url(normalised(base_url))
    name = f"credagg_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
