"""KYC tiers against rate cards, secured quotes (LTV, health factor, liquidation price) and the
borrower's constraints, through the real app on the devnet market."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from web3 import Web3

from backend.app import create_app
from backend.config import Settings
from backend.credit.compliance import set_kyc_tier
from backend.providers.models import ProviderKind
from tests.auth.conftest import bearer, create_provider, sign_in
from tests.credit.conftest import register_pool, run_in_session

AMOUNT = 50_000 * 10**6
COLLATERAL = 40 * 10**18  # 40 WETH at 2,000 USD
CARD: dict[str, Any] = {
    "amounts": [{"asset": "USDC", "min_amount": "1", "max_amount": str(10**12)}],
    "apr_bands": [{"min_score": 300, "max_score": 850, "apr": "0.07"}],
    "origination_fee": {"bps": 100},
    "terms_days": [90],
    "required_kyc_tier": 1,
    "collateral": [{"asset": "WETH", "max_ltv": "0.75"}],
}


def secured_request(**constraints: Any) -> dict[str, Any]:
    return {
        "amount": str(AMOUNT),
        "asset": "USDC",
        "term_days": 90,
        "purpose": "bridge loan",
        "collateral": {"asset": "WETH", "amount": str(COLLATERAL), "chain_id": 31337},
        "constraints": constraints,
    }


def test_kyc_tier_gates_a_card_and_secured_figures_follow_the_feeds(
    credit_settings: Settings, market: Any
) -> None:
    with TestClient(create_app(credit_settings)) as client:
        card_id, key = create_provider(credit_settings)
        assert client.put("/v1/provider/rate-card", json=CARD, headers=bearer(key)).is_success
        payout = "0x" + "ab" * 20  # where this lender's loans are funded from, on-chain
        profile = client.patch(
            "/v1/provider/profile",
            json={"payout_address": Web3.to_checksum_address(payout)},
            headers=bearer(key),
        )
        assert profile.is_success, profile.text
        pools = {}
        for chain_id, chain in market.chains.items():
            pid, _ = create_provider(credit_settings, kind=ProviderKind.DEFI)
            register_pool(credit_settings, pid, chain_id, chain.contracts[chain.pool.label])
            pools[chain_id] = pid
        token = sign_in(client, market.borrower)

        before = client.post("/v1/credit-requests", json=secured_request(), headers=bearer(token))
        assert before.status_code == 201, before.text
        not_quoted = {r["provider_id"]: r for r in before.json()["not_quoted"]}
        assert not_quoted[card_id]["outcome"] == "ineligible"
        assert "requires KYC tier 1; the wallet has tier 0" in not_quoted[card_id]["reason"]
        # the collateral is on 31337: the pool on 31338 cannot take it
        assert not_quoted[pools[31338]]["outcome"] == "ineligible"
        assert "collateral" in not_quoted[pools[31338]]["reason"]

        run_in_session(credit_settings, lambda s: set_kyc_tier(s, market.borrower.address, 1))
        after = client.post(
            "/v1/credit-requests", json=secured_request(max_apr="0.06"), headers=bearer(token)
        )
        assert after.status_code == 201, after.text
        body = after.json()

    quotes = {q["provider_id"]: q for q in body["quotes"] + body["excluded"]}
    card = quotes[card_id]
    # 7 % plus a 1 % fee is above the borrower's 6 % limit: shown apart, with the reason
    assert card["rank"] is None
    assert "exceeds max_apr 0.06" in card["excluded_reason"]
    assert Decimal(card["quote"]["effective_annual_rate"]) > Decimal("0.07")
    assert card["quote"]["fees"] == str(AMOUNT // 100)
    # a rate-card quote names the lender's payout address as the loan's provider
    assert card["typed_data"]["message"]["provider"].lower() == payout
    for quote in quotes.values():
        doc = quote["quote"]
        # 50,000 USD of debt against 80,000 USD of WETH with an 80 % liquidation threshold
        assert Decimal(doc["ltv"]) == Decimal("0.625")
        assert Decimal(quote["figures"]["health_factor"]) == Decimal("1.28")
        assert Decimal(doc["liquidation_price"]) == Decimal("1562.5")
        assert doc["collateral_amount"] == str(COLLATERAL)
        assert quote["typed_data"]["message"]["collateralAmount"] == COLLATERAL
    assert [q["provider_id"] for q in body["quotes"]] == [pools[31337]]
