"""Strict validation of POST /v1/credit-requests: every 422 names the field and how to fix it.

These need no chain: validation and the asset registry check come before any chain read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.config import Settings
from tests.auth.conftest import bearer, sign_in

VALID: dict[str, Any] = {
    "amount": "1000000",
    "asset": "USDC",
    "term_days": 30,
    "purpose": "inventory",
}


@pytest.fixture
def api(tmp_path: Path, make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    assets = tmp_path / "assets.json"
    usdc = {"symbol": "USDC", "chain_id": 31337, "address": "0x" + "aa" * 20, "decimals": 6}
    assets.write_text(json.dumps({"assets": [usdc]}))
    with TestClient(create_app(make_settings(credit_assets_file=assets))) as client:
        yield client


@pytest.fixture
def token(api: TestClient) -> str:
    return sign_in(api, Account.create())


def post(api: TestClient, token: str, **changes: Any) -> Any:
    body = {**VALID, **changes}
    return api.post("/v1/credit-requests", json=body, headers=bearer(token))


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"amount": "0"}, "body.amount", "positive integer"),
        ({"amount": 1000000}, "body.amount", "string"),
        ({"amount": "1.5"}, "body.amount", "smallest unit"),
        ({"amount": "-5"}, "body.amount", "no sign"),
        ({"amount": "1" + "0" * 80}, "body.amount", "positive integer"),
        ({"term_days": 45}, "body.term_days", "use 30 or 60"),
        ({"term_days": 0}, "body.term_days", "greater than or equal to 30"),
        ({"term_days": 36000}, "body.term_days", "less than or equal to 3600"),
        ({"asset": "usdc"}, "body.asset", "pattern"),
        ({"purpose": ""}, "body.purpose", "at least 1"),
        ({"colour": "red"}, "body.colour", "not permitted"),
        ({"constraints": {"max_apr": 0.15}}, "body.constraints.max_apr", "decimal string"),
        ({"constraints": {"max_apr": "-1"}}, "body.constraints.max_apr", "above 0"),
        ({"constraints": {"secured": "maybe"}}, "body.constraints.secured", "secured_only"),
        (
            {"collateral": {"asset": "WETH", "amount": "0", "chain_id": 31337}},
            "body.collateral.amount",
            "positive integer",
        ),
    ],
)
def test_invalid_fields_are_named(
    api: TestClient, token: str, changes: dict[str, Any], field: str, words: str
) -> None:
    answer = post(api, token, **changes)
    assert answer.status_code == 422, answer.text
    problems = {p["field"]: p["message"] for p in answer.json()["errors"]}
    assert field in problems, problems
    assert words in problems[field], problems[field]


def test_missing_fields_are_named(api: TestClient, token: str) -> None:
    answer = api.post("/v1/credit-requests", json={}, headers=bearer(token))
    assert answer.status_code == 422
    fields = {p["field"] for p in answer.json()["errors"]}
    assert {"body.amount", "body.asset", "body.term_days", "body.purpose"} <= fields


def test_unknown_asset_and_chain_say_which_are_known(api: TestClient, token: str) -> None:
    answer = post(api, token, asset="DOGE")
    assert answer.status_code == 422
    assert answer.json()["error"] == "unknown_asset"
    assert "asset" in answer.json()["detail"]
    assert "USDC" in answer.json()["hint"]
    other_chain = post(api, token, chain_id=1)
    assert other_chain.status_code == 422
    assert "chain 1" in other_chain.json()["detail"]


def test_collateral_must_be_a_collateral_asset(api: TestClient, token: str) -> None:
    answer = post(api, token, collateral={"asset": "USDC", "amount": "5", "chain_id": 31337})
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("collateral.asset")


def test_a_wallet_session_is_required(api: TestClient) -> None:
    assert api.post("/v1/credit-requests", json=VALID).status_code == 401
    assert api.get("/v1/credit-requests/nope").status_code == 401
