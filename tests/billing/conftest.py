"""Billing tests reuse the risk tests' devnet driver and the watcher's database fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from backend.app import create_app
from backend.config import Settings
from tests.risk.conftest import engine, factory, lending, market, watcher_settings  # noqa: F401


@pytest.fixture
def api(watcher_settings: Settings, engine: Engine) -> Iterator[TestClient]:  # noqa: F811
    """The real app on this test's fresh database."""
    with TestClient(create_app(watcher_settings, engine=engine)) as client:
        yield client
