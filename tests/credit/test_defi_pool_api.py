"""A DeFi provider declares its lending pool through the API; credagg checks it on-chain first,
refuses a bad declaration with a 4xx that says what to fix (keeping the previous one), and the
declared pool quotes in the next borrower's fan-out."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from backend.app import create_app
from backend.auth.scopes import REQUESTS_READ
from backend.config import Settings
from backend.providers.models import ProviderKind
from tests.auth.conftest import bearer, create_key, create_provider, sign_in
from tests.credit.test_credit_requests import REQUEST

CHAIN = 31337


def _pool(market: Any, chain_id: int = CHAIN) -> str:
    chain = market.chains[chain_id]
    return str(chain.contracts[chain.pool.label])


def _declare(client: TestClient, key: str, **body: Any) -> Any:
    return client.put("/v1/provider/defi-pool", json=body, headers=bearer(key))


def test_a_declared_pool_is_verified_on_chain_and_quotes(
    credit_settings: Settings, market: Any
) -> None:
    provider_id, key = create_provider(credit_settings, kind=ProviderKind.DEFI)
    with TestClient(create_app(credit_settings)) as client:
        assert client.get("/v1/provider/defi-pool", headers=bearer(key)).status_code == 404

        answer = _declare(client, key, chain_id=CHAIN, pool=_pool(market), asset="USDC")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["chain_id"], body["pool"], body["asset"]) == (
            CHAIN,
            _pool(market).lower(),
            "USDC",
        )
        assert body["checked_at_block"] >= 1 and int(body["total_supplied"]) > 0
        assert int(body["rate_model"]["optimal_utilization"]) > 0

        stored = client.get("/v1/provider/defi-pool", headers=bearer(key)).json()
        assert stored == {"chain_id": CHAIN, "pool": _pool(market).lower(), "asset": "USDC"}

        token = sign_in(client, market.borrower)
        quotes = client.post("/v1/credit-requests", json=REQUEST, headers=bearer(token)).json()
    assert [q["chain_id"] for q in quotes["quotes"] if q["provider_id"] == provider_id] == [CHAIN]


def test_bad_declarations_say_what_to_fix_and_keep_the_previous_one(
    credit_settings: Settings, market: Any
) -> None:
    _, key = create_provider(credit_settings, kind=ProviderKind.DEFI)
    usdc = market.address(CHAIN, "USDC")
    with TestClient(create_app(credit_settings)) as client:
        good = _declare(client, key, chain_id=CHAIN, pool=_pool(market), asset="USDC")
        assert good.status_code == 200, good.text

        cases = [
            ({"chain_id": 999_999}, 422, "unknown_chain", "999999"),
            ({"asset": "DOGE"}, 422, "unknown_asset", "DOGE"),
            ({"pool": market.borrower.address}, 422, "invalid_pool", "holds no contract"),
            ({"pool": usdc}, 422, "invalid_pool", "lending-pool interface"),
            ({"asset": "WETH"}, 422, "invalid_pool", "not WETH"),
            ({"pool": "0x1234"}, 422, "validation_error", "pool"),
        ]
        for change, status, code, words in cases:
            body = {"chain_id": CHAIN, "pool": _pool(market), "asset": "USDC", **change}
            answer = client.put("/v1/provider/defi-pool", json=body, headers=bearer(key))
            assert answer.status_code == status, (change, answer.text)
            error = answer.json()
            assert error["error"] == code, (change, error)
            assert words in answer.text, (change, error)

        kept = client.get("/v1/provider/defi-pool", headers=bearer(key)).json()
    assert kept == {"chain_id": CHAIN, "pool": _pool(market).lower(), "asset": "USDC"}


def test_only_a_defi_provider_with_profile_write_declares_and_only_its_own(
    credit_settings: Settings, market: Any
) -> None:
    owner_id, owner = create_provider(credit_settings, kind=ProviderKind.DEFI)
    _, other = create_provider(credit_settings, kind=ProviderKind.DEFI)
    _, lender = create_provider(credit_settings)  # traditional
    reader = create_key(credit_settings, provider_id=owner_id, scopes=[REQUESTS_READ]).token
    declaration = {"chain_id": CHAIN, "pool": _pool(market), "asset": "USDC"}
    with TestClient(create_app(credit_settings)) as client:
        refused = client.put("/v1/provider/defi-pool", json=declaration, headers=bearer(lender))
        assert refused.status_code == 409 and refused.json()["error"] == "not_a_defi_provider"
        scoped = client.put("/v1/provider/defi-pool", json=declaration, headers=bearer(reader))
        assert scoped.status_code == 403, scoped.text
        ok = client.put("/v1/provider/defi-pool", json=declaration, headers=bearer(owner))
        assert ok.status_code == 200, ok.text

        assert client.get("/v1/provider/defi-pool", headers=bearer(other)).status_code == 404
        assert client.get("/v1/provider/defi-pool", headers=bearer(reader)).status_code == 200
        wallet = sign_in(client, market.borrower)
        as_wallet = client.get("/v1/provider/defi-pool", headers=bearer(wallet))
        assert as_wallet.status_code in (401, 403), as_wallet.text
