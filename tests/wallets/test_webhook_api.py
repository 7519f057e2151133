"""A wallet's webhook through HTTP: set, read, rotate, deliveries, and isolation."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.config import Settings
from backend.db import SessionFactory, session_scope
from backend.providers.webhooks.subscribers import Subscriber
from backend.providers.webhooks.subscriptions import enqueue
from backend.wallets.models import WalletWebhookEndpoint
from tests.auth.conftest import bearer, create_provider

from .conftest import Wallet


def _enqueue(factory: SessionFactory, wallet: Wallet, **payload: Any) -> int:
    with session_scope(factory) as session:
        return enqueue(session, Subscriber.wallet(wallet.address), "risk.alert", payload)


def test_put_shows_the_secret_once_and_stores_it_encrypted(
    client: TestClient, wallet: Wallet, session_factory: SessionFactory
) -> None:
    missing = client.get("/v1/me/webhook", headers=wallet.headers)
    assert missing.status_code == 404 and missing.json()["error"] == "webhook_not_configured"
    assert "/v1/me/webhook" in missing.json()["hint"]
    created = client.put(
        "/v1/me/webhook", headers=wallet.headers, json={"url": "http://127.0.0.1:9/hooks"}
    )
    assert created.status_code == 200, created.text
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    read = client.get("/v1/me/webhook", headers=wallet.headers)
    assert read.status_code == 200 and "secret" not in read.json()
    moved = client.put(
        "/v1/me/webhook", headers=wallet.headers, json={"url": "http://127.0.0.1:9/other"}
    )
    assert moved.json()["url"] == "http://127.0.0.1:9/other" and moved.json()["secret"] is None
    with session_scope(session_factory) as session:
        row = session.scalars(
            select(WalletWebhookEndpoint).where(WalletWebhookEndpoint.wallet == wallet.address)
        ).one()
        assert row.secret.startswith("v1.") and secret not in row.secret


def test_rotation_returns_a_new_secret_and_keeps_the_old_one_for_the_grace(
    client: TestClient, wallet: Wallet
) -> None:
    rotate = client.post("/v1/me/webhook/rotate-secret", headers=wallet.headers)
    assert rotate.status_code == 404
    first = client.put("/v1/me/webhook", headers=wallet.headers, json={"url": "http://a.test/h"})
    rotated = client.post(
        "/v1/me/webhook/rotate-secret", headers=wallet.headers, json={"grace_seconds": 60}
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"] != first.json()["secret"]
    assert rotated.json()["previous_secret_expires_at"] is not None


def test_production_url_rules_apply_to_wallets(
    client: TestClient, make_settings: Any, wallet: Wallet
) -> None:
    response = client.put("/v1/me/webhook", headers=wallet.headers, json={"url": "ftp://x.test/"})
    assert response.status_code == 422 and response.json()["error"] == "invalid_webhook_url"


def test_deliveries_are_listed_read_and_redelivered_only_by_their_wallet(
    client: TestClient,
    wallet: Wallet,
    other_wallet: Wallet,
    session_factory: SessionFactory,
    settings: Settings,
) -> None:
    mine = [_enqueue(session_factory, wallet, n=n) for n in range(3)]
    theirs = _enqueue(session_factory, other_wallet, n=99)
    page = client.get("/v1/me/webhook/deliveries?limit=2", headers=wallet.headers)
    assert page.status_code == 200, page.text
    assert [d["id"] for d in page.json()["items"]] == [mine[2], mine[1]]
    rest = client.get(
        f"/v1/me/webhook/deliveries?before={page.json()['next_before']}", headers=wallet.headers
    )
    assert [d["id"] for d in rest.json()["items"]] == [mine[0]]
    one = client.get(f"/v1/me/webhook/deliveries/{mine[0]}", headers=wallet.headers)
    assert one.status_code == 200 and one.json()["payload"] == {"n": 0}
    assert one.json()["attempts"] == []
    again = client.post(f"/v1/me/webhook/deliveries/{mine[0]}/redeliver", headers=wallet.headers)
    assert again.status_code == 202 and again.json()["status"] == "pending"
    for path in (f"/v1/me/webhook/deliveries/{theirs}",):
        assert client.get(path, headers=wallet.headers).status_code == 404
    stolen = client.post(f"/v1/me/webhook/deliveries/{theirs}/redeliver", headers=wallet.headers)
    assert stolen.status_code == 404 and stolen.json()["error"] == "delivery_not_found"
    # A lender's key sees neither the wallet routes nor the wallet's deliveries.
    _, key = create_provider(settings)
    assert client.get("/v1/me/webhook/deliveries", headers=bearer(key)).status_code == 403
    lender_view = client.get(f"/v1/provider/webhook/deliveries/{mine[0]}", headers=bearer(key))
    assert lender_view.status_code == 404
