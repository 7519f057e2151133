"""Health factors and early-warning alerts from real MockPriceFeed updates on a devnet."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select

from backend.db import SessionFactory
from backend.providers.models import WebhookDelivery
from backend.risk.repository import RiskRepository
from backend.risk.service import loans, wallet_score
from backend.watcher.backfill import backfill
from backend.watcher.projections import default_registry
from backend.watcher.rebuild import rebuild
from chain_adapters.devnet import Devnet
from tests.risk.conftest import Lending, create_lender


def _alerts(factory: SessionFactory, chain_id: int) -> list[tuple[str, str]]:
    with factory() as session:
        return [(a.loan_id, a.threshold) for a in RiskRepository(session).alerts(chain_id)]


def test_price_drop_raises_one_alert_per_crossing(
    factory: SessionFactory, lending: Lending, chains: list[Devnet]
) -> None:
    watcher = lending.watcher(chains[0], confirmations=3)
    # 1 WETH at $2,000 x 80 % against $1,000: health 1.6 (above every threshold).
    loan = lending.open_loan(1_000 * 10**6, 10**18)
    backfill(factory, watcher, from_block=0, until_head=True)
    with factory() as session:
        [view] = [v for v in loans(session, watcher.chain_id) if v.loan.loan_id == loan]
        assert view.health_factor == Decimal("1.6")
        assert view.loan.collateral == 10**18 and view.loan.outstanding == 1_000 * 10**6
    assert _alerts(factory, watcher.chain_id) == []

    lending.set_eth_price(1_800)  # 1.44: crosses 1.5
    lending.set_eth_price(1_700)  # 1.36: still below 1.5, no new alert
    backfill(factory, watcher, from_block=0, until_head=True)
    assert _alerts(factory, watcher.chain_id) == [(str(loan), "1.5")]

    lending.set_eth_price(2_000)  # back up to 1.6
    lending.set_eth_price(1_400)  # 1.12: crosses 1.5 again and 1.2, in one update
    backfill(factory, watcher, from_block=0, until_head=True)
    assert _alerts(factory, watcher.chain_id) == [
        (str(loan), "1.5"),
        (str(loan), "1.2"),
        (str(loan), "1.5"),
    ]
    lending.repay(loan, 500 * 10**6)  # health 2.24: no alert on the way up
    backfill(factory, watcher, from_block=0, until_head=True)
    assert len(_alerts(factory, watcher.chain_id)) == 3
    with factory() as session:
        result = wallet_score(session, [watcher.chain_id], lending.market.borrower.address)
        assert "REPAYMENT_HISTORY" in result.reasons


def test_reorg_removes_the_alert_of_an_orphaned_price_update(
    factory: SessionFactory, lending: Lending, chains: list[Devnet]
) -> None:
    watcher = lending.watcher(chains[0], confirmations=6)
    lending.open_loan(1_000 * 10**6, 10**18)
    backfill(factory, watcher, from_block=0, until_head=True)
    lending.set_eth_price(1_800)
    backfill(factory, watcher, from_block=0, until_head=True)
    assert len(_alerts(factory, watcher.chain_id)) == 1
    lending.rpc("anvil_rollback", [1])
    lending.mine(1)
    backfill(factory, watcher, from_block=0, until_head=True)
    assert _alerts(factory, watcher.chain_id) == []


def test_alert_goes_to_the_lenders_webhook_once_final_and_never_twice(
    factory: SessionFactory, lending: Lending, chains: list[Devnet]
) -> None:
    with factory() as session, session.begin():
        provider_id = create_lender(session, name="lender-a", payout_address=lending.provider)
    watcher = lending.watcher(chains[0], confirmations=3)
    loan = lending.open_loan(1_000 * 10**6, 10**18)
    lending.set_eth_price(1_800)
    backfill(factory, watcher, from_block=0, until_head=True)
    assert _alerts(factory, watcher.chain_id) == [(str(loan), "1.5")]
    assert _deliveries(factory, provider_id) == []  # raised at the head, not final yet
    lending.mine(3)
    backfill(factory, watcher, from_block=0, until_head=True)
    [payload] = _deliveries(factory, provider_id)
    assert payload["loan_id"] == str(loan) and payload["threshold"] == "1.5"
    assert Decimal(payload["health_factor"]) == Decimal("1.44")
    with factory() as session, session.begin():
        rebuild(session, watcher.chain_id, default_registry())
    assert len(_deliveries(factory, provider_id)) == 1  # the ledger stops a second send


def _deliveries(factory: SessionFactory, provider_id: int) -> list[dict[str, Any]]:
    with factory() as session:
        rows = session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.provider_id == provider_id)
            .where(WebhookDelivery.event_type == "risk.alert")
        ).all()
        return [dict(r.payload) for r in rows]
