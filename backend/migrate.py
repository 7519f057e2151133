"""Run and inspect Alembic migrations programmatically (CLI `credagg migrate`, dev script, tests).

The Alembic files live inside the package (`backend/migrations/`), so this works from an
installed wheel as well as from a checkout, whatever the current directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from backend.config import Settings
from backend.db import create_db_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    """An Alembic `Config` bound to `settings` (env.py reads them from `attributes`)."""
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["settings"] = settings
    return config


def upgrade_head(settings: Settings) -> str | None:
    """`alembic upgrade head` on the configured database; returns the revision it ends at."""
    command.upgrade(alembic_config(settings), "head")
    return current_revision(settings)


def current_revision(settings: Settings) -> str | None:
    engine = create_db_engine(settings)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


@dataclass(frozen=True)
class SchemaState:
    """Where the database schema stands relative to the code's migrations."""

    current: tuple[str, ...]
    heads: tuple[str, ...]
    known: bool  # every current revision exists in this code's migration scripts

    @property
    def at_head(self) -> bool:
        return set(self.current) == set(self.heads)

    @property
    def behind(self) -> bool:
        """Unmigrated, or on an older revision this code knows: run `upgrade_head`.

        A revision this code does not know means the database is *ahead* (a newer release has
        migrated it during a rolling deploy); that is not a reason to stop serving.
        """
        return not self.current or (self.known and not self.at_head)


class MigrationScripts:
    """The revisions shipped with this code, loaded once (parsing them costs milliseconds)."""

    def __init__(self) -> None:
        self._script = ScriptDirectory(str(MIGRATIONS_DIR))
        self.heads: tuple[str, ...] = tuple(self._script.get_heads())
        self.revisions: frozenset[str] = frozenset(
            rev.revision for rev in self._script.walk_revisions()
        )

    def state(self, connection: Connection) -> SchemaState:
        current = tuple(MigrationContext.configure(connection).get_current_heads())
        return SchemaState(
            current=current,
            heads=self.heads,
            known=all(rev in self.revisions for rev in current),
        )
