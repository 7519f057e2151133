"""Operator commands: `credagg providers create`, `credagg auth auditor-key`, `auth revoke`."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from backend.cli import app as cli
from backend.config import get_settings

from .conftest import bearer, unique

runner = CliRunner()
_KEY = re.compile(r"ck_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", settings.effective_database_url)
    monkeypatch.setenv("CREDAGG_ENVIRONMENT", "test")
    monkeypatch.setenv("CREDAGG_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def key_in(output: str) -> str:
    found = _KEY.findall(output)
    assert len(found) == 1, output
    return found[0]


def test_create_provider_prints_a_working_key_once(cli_env: None, client: TestClient) -> None:
    name = unique("acme")
    result = runner.invoke(cli, ["providers", "create", "--name", name, "--kind", "defi"])
    assert result.exit_code == 0, result.output
    token = key_in(result.output)
    me = client.get("/v1/auth/me", headers=bearer(token)).json()
    assert me["kind"] == "provider"
    assert me["tenant"] in result.output

    again = runner.invoke(cli, ["providers", "create", "--name", name, "--kind", "defi"])
    assert again.exit_code == 1
    assert "already exists" in again.output
    bad_kind = runner.invoke(cli, ["providers", "create", "--name", unique("x"), "--kind", "bank"])
    assert bad_kind.exit_code == 2


def test_auditor_key_then_revoke(cli_env: None, client: TestClient) -> None:
    name = unique("auditor")
    result = runner.invoke(cli, ["auth", "auditor-key", "--name", name])
    assert result.exit_code == 0, result.output
    token = key_in(result.output)
    me = client.get("/v1/auth/me", headers=bearer(token)).json()
    assert me == {
        "kind": "auditor",
        "id": name,
        "actor": f"auditor:{name}",
        "tenant": None,
        "scopes": ["audit:read", "receipts:read"],
    }

    revoked = runner.invoke(cli, ["auth", "revoke", token.split("_")[1]])
    assert revoked.exit_code == 0, revoked.output
    after = client.get("/v1/auth/me", headers=bearer(token))
    assert after.status_code == 401
    assert after.json()["error"] == "credentials_revoked"

    missing = runner.invoke(cli, ["auth", "revoke", "0000000000000000"])
    assert missing.exit_code == 1
    assert "no API key" in missing.output
