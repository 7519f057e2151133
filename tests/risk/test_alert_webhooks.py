"""Early-warning alerts reach both webhooks - the lender's and the borrower wallet's - exactly
once per threshold crossing, once final, over real HTTP with verifiable signatures; an alert
orphaned by a reorg before finality reaches neither.

Real parts throughout: Anvil (MockPriceFeed updates), the watcher's backfill on a fresh
database, the delivery engine POSTing to `http.server` receivers that verify every signature.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

import pytest
from hexbytes import HexBytes
from sqlalchemy import select

from backend.config import Settings
from backend.db import SessionFactory, session_scope
from backend.providers import service as providers
from backend.providers.models import WebhookDelivery
from backend.providers.pii import field_cipher
from backend.providers.webhooks import subscriptions
from backend.providers.webhooks.delivery import WebhookSender
from backend.providers.webhooks.subscribers import Subscriber
from backend.risk.repository import RiskRepository
from backend.watcher.backfill import backfill
from backend.watcher.projections import default_registry
from backend.watcher.rebuild import rebuild
from chain_adapters.devnet import Devnet
from tests.risk.conftest import Lending, create_lender
from tests.support.webhooks import Receiver, serving


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    """Two real webhook endpoints: the lender's and the borrower wallet's."""
    with serving(Receiver(), "/lender") as lender, serving(Receiver(), "/wallet") as wallet:
        yield {"lender": lender, "wallet": wallet}


@dataclass
class Subscribed:
    provider_id: int
    wallet: str


def subscribe(
    factory: SessionFactory,
    settings: Settings,
    lending: Lending,
    receivers: dict[str, Receiver],
) -> Subscribed:
    """A lender (payout address = the loans' on-chain provider) and the borrower, both with
    webhooks pointing at the receivers, which hold the secrets they were shown."""
    cipher = field_cipher(settings)
    wallet = lending.market.borrower.address.lower()
    with session_scope(factory) as session:
        provider_id = create_lender(session, name="alerts-lender", payout_address=lending.provider)
        lender = providers.put_webhook(
            session, provider_id, receivers["lender"].url, settings=settings, cipher=cipher
        )
        borrower = subscriptions.put_webhook(
            session,
            Subscriber.wallet(wallet),
            receivers["wallet"].url,
            settings=settings,
            cipher=cipher,
        )
    assert lender.secret and borrower.secret and lender.secret != borrower.secret
    receivers["lender"].secrets = [lender.secret]
    receivers["wallet"].secrets = [borrower.secret]
    return Subscribed(provider_id, wallet)


def alert_deliveries(factory: SessionFactory) -> list[WebhookDelivery]:
    with factory() as session:
        return list(
            session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.event_type == "risk.alert")
                .order_by(WebhookDelivery.id)
            )
        )


def send_all(factory: SessionFactory, settings: Settings) -> None:
    """What the worker does: attempt every due delivery once (real HTTP POSTs)."""
    sender = WebhookSender(factory, field_cipher(settings), timeout=5.0)
    try:
        for delivery_id in sender.due():
            assert sender.attempt(delivery_id).status == "delivered"
    finally:
        sender.close()


def test_a_crossing_reaches_the_lender_and_the_wallet_once_each_signed_with_their_secrets(
    factory: SessionFactory,
    watcher_settings: Settings,
    lending: Lending,
    chains: list[Devnet],
    receivers: dict[str, Receiver],
) -> None:
    who = subscribe(factory, watcher_settings, lending, receivers)
    watcher = lending.watcher(chains[0], confirmations=3)
    loan = lending.open_loan(1_000 * 10**6, 10**18)  # health 1.6
    lending.set_eth_price(1_800)  # 1.44: crosses 1.5
    [tx] = lending.w3.eth.get_block("latest")["transactions"]  # hashes (not full_transactions)
    price_tx = cast(HexBytes, tx).to_0x_hex()
    backfill(factory, watcher, from_block=0, until_head=True)
    assert alert_deliveries(factory) == []  # raised at the head; sent only once final
    lending.mine(3)
    backfill(factory, watcher, from_block=0, until_head=True)
    rows = alert_deliveries(factory)
    assert {(r.provider_id, r.wallet) for r in rows} == {
        (who.provider_id, None),
        (None, who.wallet),
    }
    assert len(rows) == 2
    send_all(factory, watcher_settings)

    for name in ("lender", "wallet"):
        receiver = receivers[name]
        assert len(receiver.received) == 1 and len(receiver.verified()) == 1, receiver.received
        event = receiver.verified()[0].json()
        assert event["type"] == "risk.alert"
        data = event["data"]
        assert data["chain_id"] == watcher.chain_id and data["loan_id"] == str(loan)
        assert data["threshold"] == "1.5" and Decimal(data["health_factor"]) == Decimal("1.44")
        assert data["price"] == "1800" and data["transaction_hash"] == price_tx
        assert data["borrower"] == who.wallet and isinstance(data["log_index"], int)
    # The wallet's request does not verify with the lender's secret (and vice versa).
    wallet_event = receivers["wallet"].received[0]
    receivers["wallet"].secrets = list(receivers["lender"].secrets)
    assert receivers["wallet"].verify(wallet_event.body, wallet_event.headers["Credagg-Signature"])[
        1
    ]

    # Replays (more batches, a rebuild) send nothing again; a second crossing sends a pair.
    with factory() as session, session.begin():
        rebuild(session, watcher.chain_id, default_registry())
    backfill(factory, watcher, from_block=0, until_head=True)
    assert len(alert_deliveries(factory)) == 2
    lending.set_eth_price(2_000)
    lending.set_eth_price(1_700)  # 1.36: crosses 1.5 again
    lending.mine(3)
    backfill(factory, watcher, from_block=0, until_head=True)
    assert len(alert_deliveries(factory)) == 4


def test_a_wallet_without_a_webhook_gets_nothing_and_the_lender_still_does(
    factory: SessionFactory,
    watcher_settings: Settings,
    lending: Lending,
    chains: list[Devnet],
) -> None:
    with session_scope(factory) as session:
        provider_id = create_lender(session, name="solo-lender", payout_address=lending.provider)
    watcher = lending.watcher(chains[0], confirmations=2)
    lending.open_loan(1_000 * 10**6, 10**18)
    lending.set_eth_price(1_800)
    lending.mine(2)
    backfill(factory, watcher, from_block=0, until_head=True)
    assert [(r.provider_id, r.wallet) for r in alert_deliveries(factory)] == [(provider_id, None)]


def test_an_alert_orphaned_before_finality_reaches_neither_webhook(
    factory: SessionFactory,
    watcher_settings: Settings,
    lending: Lending,
    chains: list[Devnet],
    receivers: dict[str, Receiver],
) -> None:
    subscribe(factory, watcher_settings, lending, receivers)
    watcher = lending.watcher(chains[0], confirmations=4)
    lending.open_loan(1_000 * 10**6, 10**18)
    lending.mine(5)
    backfill(factory, watcher, from_block=0, until_head=True)
    lending.set_eth_price(1_800)
    backfill(factory, watcher, from_block=0, until_head=True)
    with factory() as session:
        assert len(RiskRepository(session).alerts(watcher.chain_id)) == 1  # raised at the head
    assert alert_deliveries(factory) == []  # not final: nothing sent
    lending.rpc("anvil_rollback", [1])  # the price update is gone
    lending.mine(6)  # and the replacement chain is final past it
    backfill(factory, watcher, from_block=0, until_head=True)
    assert alert_deliveries(factory) == []
    send_all(factory, watcher_settings)
    assert receivers["lender"].received == [] and receivers["wallet"].received == []
