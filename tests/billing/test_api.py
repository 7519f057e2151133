"""A lender's billing statements through HTTP: open and final, line items, receipt, isolation."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from backend.auth.scopes import LOANS_READ
from backend.billing.service import subscribe
from backend.billing.tasks import run
from backend.config import Settings
from backend.db import SessionFactory, session_scope
from backend.receipts.signing import ReceiptSigner
from tests.auth.conftest import bearer, create_key, create_provider
from tests.risk.conftest import create_lender


def _no_blocks(chain_id: int, number: int) -> int:
    raise AssertionError(f"no chain is watched, yet block {number} of {chain_id} was asked")


def test_statements_are_listed_and_read_by_their_lender_only(
    api: TestClient, factory: SessionFactory, watcher_settings: Settings
) -> None:
    with session_scope(factory) as session:
        lender_id = create_lender(session, name="billed-lender", payout_address="0x" + "cd" * 20)
        subscribe(
            session,
            lender_id,
            plan_code="growth",
            currency_chain_id=31337,
            currency_address="0x" + "ab" * 20,
            currency_symbol="USDC",
            currency_decimals=6,
        )
    now = datetime(2026, 11, 15, tzinfo=UTC)
    run(factory, block_time=_no_blocks, signer=ReceiptSigner(bytes(32)), now=now)
    lender = bearer(create_key(watcher_settings, provider_id=lender_id).token)

    listed = api.get("/v1/provider/statements", headers=lender)
    assert listed.status_code == 200, listed.text
    november, october = listed.json()["items"]
    assert (november["status"], november["receipt_id"]) == ("open", None)
    assert october["status"] == "final" and october["receipt_id"]
    assert october["period_start"].startswith("2026-10-01") and october["total"] == str(500 * 10**6)
    assert [line["code"] for line in october["lines"]] == [
        "plan_fee",
        "quotes",
        "loans_originated",
        "origination_fee",
    ]
    receipt = api.get(f"/v1/receipts/{october['receipt_id']}", headers=lender)
    assert receipt.status_code == 200 and receipt.json()["kind"] == "billing_statement"

    page = api.get("/v1/provider/statements?limit=1", headers=lender).json()
    assert [s["id"] for s in page["items"]] == [november["id"]]
    rest = api.get(f"/v1/provider/statements?before={page['next_before']}", headers=lender).json()
    assert [s["id"] for s in rest["items"]] == [october["id"]] and rest["next_before"] is None
    one = api.get(f"/v1/provider/statements/{october['id']}", headers=lender)
    assert one.status_code == 200 and one.json() == october

    _, other_key = create_provider(watcher_settings)
    other = bearer(other_key)
    assert api.get("/v1/provider/statements", headers=other).json()["items"] == []
    hidden = api.get(f"/v1/provider/statements/{october['id']}", headers=other)
    assert hidden.status_code == 404 and hidden.json()["error"] == "billing_statement_not_found"
    narrow = create_key(watcher_settings, provider_id=lender_id, scopes=[LOANS_READ]).token
    assert api.get("/v1/provider/statements", headers=bearer(narrow)).status_code == 403
