"""Kit tests run the real app (TestClient) on the session database of tests/backend.

`kit_app` is `create_app` plus the counting endpoints of `tests.kit.endpoints`; `create_provider`
makes a committed provider and API key through the real auth service.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.auth.key_service import ApiKeyService
from backend.auth.models import WalletSession
from backend.auth.repository import WalletSessionRepository
from backend.auth.tokens import digest, new_session_token
from backend.config import Settings
from backend.db import create_db_engine, create_session_factory, session_scope
from backend.kit.columns import utcnow
from backend.providers.models import ProviderKind
from tests.backend.conftest import (  # noqa: F401 - fixtures re-exported for these tests
    _no_credagg_env,
    backend_database_url,
    make_settings,
    observer,
    redis_url,
    settings,
)
from tests.kit.endpoints import Executions
from tests.kit.endpoints import router as test_router


def build_kit_app(config: Settings) -> FastAPI:
    app = create_app(config)
    app.include_router(test_router)
    app.state.executions = Executions()
    return app


@pytest.fixture
def kit_app(settings: Settings) -> FastAPI:  # noqa: F811 - the re-exported fixture
    return build_kit_app(settings)


@pytest.fixture
def kit_client(kit_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(kit_app) as test_client:
        yield test_client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_provider(config: Settings) -> tuple[int, str]:
    """A committed provider and its first key (all scopes): (provider id, key)."""
    service = ApiKeyService(config)
    engine = create_db_engine(config)
    try:
        with session_scope(create_session_factory(engine)) as session:
            provider = service.create_provider(
                session, name=unique("lender"), kind=ProviderKind.TRADITIONAL
            )
            created = service.create_provider_key(session, provider.id, name="initial")
            return provider.id, created.token
    finally:
        engine.dispose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create_wallet_session(config: Settings, address: str) -> str:
    """A committed wallet session for `address` (as SIWE sign-in leaves it): its token."""
    token = new_session_token()
    now = utcnow()
    engine = create_db_engine(config)
    try:
        with session_scope(create_session_factory(engine)) as session:
            WalletSessionRepository(session).create(
                WalletSession(
                    token_hash=digest(config.session_secret.get_secret_value(), token),
                    address=address.lower(),
                    chain_id=31337,
                    created_at=now,
                    expires_at=now + timedelta(hours=1),
                )
            )
        return token
    finally:
        engine.dispose()
