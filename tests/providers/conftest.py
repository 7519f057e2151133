"""Provider tests: the real app on the session database of tests/backend, a real HTTP receiver
for webhooks (the `receiver` fixture of the `tests.support.webhooks` plugin), and a clock the
tests move by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from backend.config import Settings
from backend.db import SessionFactory, create_db_engine, create_session_factory
from tests.auth.conftest import bearer, create_key, create_provider  # noqa: F401
from tests.backend.conftest import (  # noqa: F401  # noqa: F401 - fixtures re-exported for these tests
    SettingsFactory,
    WorkerProcess,
    _no_credagg_env,
    app,
    backend_database_url,
    client,
    make_settings,
    observer,
    redis_url,
    settings,
    start_worker,
)


class FakeClock:
    """An aware UTC clock that moves only when a test says so."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now

    def unix(self) -> int:
        return int(self.now.timestamp())


@pytest.fixture
def session_factory(settings: Settings) -> Iterator[SessionFactory]:  # noqa: F811
    engine = create_db_engine(settings)
    try:
        yield create_session_factory(engine)
    finally:
        engine.dispose()


def fresh(session: Session) -> Session:
    session.expire_all()
    return session
