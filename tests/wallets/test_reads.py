"""A wallet's and a lender's reads through HTTP, from real loans and price moves on a devnet:
`/v1/me/risk`, `/v1/me/loans`, `/v1/me/alerts`, `/v1/provider/alerts`, each isolated."""

from __future__ import annotations

from decimal import Decimal

from fastapi.testclient import TestClient

from backend.auth.scopes import RECEIPTS_READ
from backend.config import Settings
from backend.credit.chain import ChainReader
from backend.credit.risk import risk_profile
from backend.db import SessionFactory, session_scope
from backend.kit.columns import utcnow
from backend.watcher.backfill import backfill
from chain_adapters.devnet import Devnet
from chain_adapters.registry import load_chains
from tests.auth.conftest import bearer, create_key, create_provider, sign_in
from tests.risk.conftest import Lending, create_lender

from .conftest import new_wallet


def test_a_wallet_reads_its_own_risk_loans_and_alerts_and_nobody_elses(
    chain_client: TestClient,
    factory: SessionFactory,
    lending: Lending,
    chains: list[Devnet],
) -> None:
    watcher = lending.watcher(chains[0], confirmations=2)
    loan = lending.open_loan(1_000 * 10**6, 10**18)  # health 1.6
    lending.set_eth_price(1_800)  # 1.44: crosses 1.5
    lending.set_eth_price(2_000)
    lending.set_eth_price(1_400)  # 1.12: crosses 1.5 and 1.2
    backfill(factory, watcher, from_block=0, until_head=True)
    me = bearer(sign_in(chain_client, lending.market.borrower))
    borrower = lending.market.borrower.address.lower()

    loans = chain_client.get("/v1/me/loans", headers=me)
    assert loans.status_code == 200, loans.text
    [item] = loans.json()["items"]
    assert item["loan_id"] == str(loan) and item["chain_id"] == watcher.chain_id
    assert item["status"] == "active" and item["outstanding"] == str(1_000 * 10**6)
    assert Decimal(item["health_factor"]) == Decimal("1.12")

    alerts = chain_client.get("/v1/me/alerts", headers=me).json()
    assert [(a["threshold"], a["price"]) for a in alerts["items"]] == [
        ("1.5", "1800"),
        ("1.2", "1400"),  # one log, two crossings: in threshold order
        ("1.5", "1400"),
    ]
    assert all(a["transaction_hash"].startswith("0x") for a in alerts["items"])
    first = chain_client.get("/v1/me/alerts?limit=2", headers=me).json()
    assert len(first["items"]) == 2 and first["next_after"]
    rest = chain_client.get(f"/v1/me/alerts?after={first['next_after']}", headers=me).json()
    assert first["items"] + rest["items"] == alerts["items"] and rest["next_after"] is None
    bad = chain_client.get("/v1/me/alerts?after=99999999999999999999:1:1:1:1.5", headers=me)
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_cursor"

    risk = chain_client.get("/v1/me/risk", headers=me)
    assert risk.status_code == 200, risk.text
    body = risk.json()
    settings: Settings = chain_client.app.state.settings  # type: ignore[attr-defined]
    assert settings.chains_file is not None
    reader = ChainReader(settings, load_chains(settings.chains_file))
    with factory() as session:
        expected = risk_profile(session, borrower, reader=reader, now=utcnow())
    assert (body["score"], body["reasons"]) == (expected.score, list(expected.reasons))
    assert "EXPOSURE_ABOVE_HISTORY" in body["reasons"] and body["loans"] == expected.loans >= 1
    assert body["exposure"] == [
        {
            "chain_id": watcher.chain_id,
            "asset": lending.market.address(lending.chain_id, "USDC").lower(),
            "outstanding": str(1_000 * 10**6),
        }
    ]
    assert [(h["loan_id"], Decimal(h["health_factor"])) for h in body["health"]] == [
        (str(loan), Decimal("1.12"))
    ]

    stranger = new_wallet(chain_client).headers
    assert chain_client.get("/v1/me/loans", headers=stranger).json()["items"] == []
    assert chain_client.get("/v1/me/alerts", headers=stranger).json()["items"] == []
    theirs = chain_client.get("/v1/me/risk", headers=stranger).json()
    assert theirs["health"] == [] and theirs["exposure"] == []


def test_a_lender_reads_the_alerts_of_its_own_loans_only(
    chain_client: TestClient,
    factory: SessionFactory,
    watcher_settings: Settings,
    lending: Lending,
    chains: list[Devnet],
) -> None:
    with session_scope(factory) as session:
        lender_id = create_lender(session, name="reads-lender", payout_address=lending.provider)
    lender = bearer(create_key(watcher_settings, provider_id=lender_id).token)
    _, other = create_provider(watcher_settings)
    watcher = lending.watcher(chains[0], confirmations=2)
    loan = lending.open_loan(1_000 * 10**6, 10**18)
    lending.set_eth_price(1_800)
    backfill(factory, watcher, from_block=0, until_head=True)

    mine = chain_client.get("/v1/provider/alerts", headers=lender)
    assert mine.status_code == 200, mine.text
    [alert] = mine.json()["items"]
    assert alert["loan_id"] == str(loan) and alert["provider"] == lending.provider.lower()
    assert chain_client.get("/v1/provider/alerts", headers=bearer(other)).json()["items"] == []
    narrow = create_key(watcher_settings, provider_id=lender_id, scopes=[RECEIPTS_READ]).token
    denied = chain_client.get("/v1/provider/alerts", headers=bearer(narrow))
    assert denied.status_code == 403 and denied.json()["error"] == "missing_scope"
    wallet = bearer(sign_in(chain_client, lending.market.borrower))
    assert chain_client.get("/v1/provider/alerts", headers=wallet).status_code == 403
