"""Auth tests run the real app (TestClient) on the session database of tests/backend.

`sign` runs the independent SIWE implementation (npm `siwe` + ethers v6, under node) over a
batch of message specs; `create_*` helpers make providers and keys through the real service.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from backend.auth.key_service import ApiKeyService, CreatedKey
from backend.auth.siwe import SiweMessage, format_message
from backend.config import Settings
from backend.db import create_db_engine, create_session_factory, session_scope
from backend.kit.columns import utcnow
from backend.providers.models import ProviderKind
from tests.backend.conftest import (  # noqa: F401 - fixtures re-exported for these tests
    _no_credagg_env,
    app,
    backend_database_url,
    client,
    make_settings,
    observer,
    settings,
)

HERE = Path(__file__).resolve().parent
SIGNER_SCRIPT = HERE / "siwe_sign.cjs"


def iso(moment: datetime) -> str:
    """RFC 3339 with milliseconds and Z, as JavaScript's Date.toISOString writes it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def siwe_fields(nonce: str, **overrides: Any) -> dict[str, Any]:
    """The fields of a message our test settings accept; override what a test is about."""
    fields: dict[str, Any] = {
        "domain": "localhost:8000",
        "uri": "http://localhost:8000",
        "version": "1",
        "chainId": 31337,
        "nonce": nonce,
        "statement": "Sign in to credagg.",
        "issuedAt": iso(utcnow()),
    }
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


Signer = Callable[[list[tuple[LocalAccount, dict[str, Any]]]], list[dict[str, str]]]


def sign_with_node(requests: list[tuple[LocalAccount, dict[str, Any]]]) -> list[dict[str, str]]:
    payload = [
        {"privateKey": "0x" + bytes(account.key).hex(), "fields": fields}
        for account, fields in requests
    ]
    result = subprocess.run(
        ["node", str(SIGNER_SCRIPT)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    signed: list[dict[str, str]] = json.loads(result.stdout)
    return signed


@pytest.fixture
def sign() -> Signer:
    return sign_with_node


def new_nonce(api: TestClient) -> str:
    response = api.get("/v1/auth/nonce")
    assert response.status_code == 200, response.text
    return str(response.json()["nonce"])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_provider(
    config: Settings, *, name: str | None = None, kind: ProviderKind = ProviderKind.TRADITIONAL
) -> tuple[int, str]:
    """A committed provider and its first key (all scopes): (provider id, key)."""
    service = ApiKeyService(config)
    engine = create_db_engine(config)
    try:
        with session_scope(create_session_factory(engine)) as session:
            provider = service.create_provider(session, name=name or unique("lender"), kind=kind)
            created = service.create_provider_key(session, provider.id, name="initial")
            return provider.id, created.token
    finally:
        engine.dispose()


def create_key(
    config: Settings,
    *,
    provider_id: int | None = None,
    scopes: list[str] | None = None,
    expires_in: timedelta | None = None,
    created_at: datetime | None = None,
) -> CreatedKey:
    """A committed key (auditor when no provider), made as if at `created_at` (default now)."""
    moment = created_at or utcnow()
    service = ApiKeyService(config, clock=lambda: moment)
    expires_at = moment + expires_in if expires_in is not None else None
    engine = create_db_engine(config)
    try:
        with session_scope(create_session_factory(engine)) as session:
            if provider_id is None:
                return service.create_auditor_key(
                    session, name=unique("auditor"), scopes=scopes, expires_at=expires_at
                )
            return service.create_provider_key(
                session, provider_id, name="extra", scopes=scopes, expires_at=expires_at
            )
    finally:
        engine.dispose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(api: TestClient, account: LocalAccount) -> str:
    """A wallet session token, through GET /v1/auth/nonce and POST /v1/auth/siwe."""
    nonce = api.get("/v1/auth/nonce").json()["nonce"]
    message = format_message(
        SiweMessage(
            domain="localhost:8000",
            address=account.address,
            uri="http://localhost:8000",
            version="1",
            chain_id=31337,
            nonce=nonce,
            issued_at=iso(utcnow()),
            statement="Sign in to credagg.",
        )
    )
    signature = account.sign_message(encode_defunct(text=message)).signature.hex()
    response = api.post("/v1/auth/siwe", json={"message": message, "signature": "0x" + signature})
    assert response.status_code == 200, response.text
    return str(response.json()["token"])
