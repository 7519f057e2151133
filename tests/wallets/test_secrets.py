"""A wallet's signing secret is encrypted at rest like a lender's, bound to its wallet, and
survives a data-key rotation (`credagg keys rotate-data-key` walks the registered columns)."""

from __future__ import annotations

import base64
import os

import pytest
from eth_account import Account
from sqlalchemy import select, update

from backend.config import DEV_DATA_ENCRYPTION_KEYS, Settings
from backend.db import SessionFactory, session_scope
from backend.kit.crypto import FieldCipher, FieldEncryptionError, envelope_key_id
from backend.kit.crypto_rotation import encrypted_columns, reencrypt_column
from backend.providers.pii import field_cipher
from backend.providers.webhooks import subscriptions
from backend.providers.webhooks.delivery import WebhookSender
from backend.providers.webhooks.subscribers import Subscriber
from backend.wallets.models import WalletWebhookEndpoint
from tests.support.webhooks import Receiver


def _subscribe(factory: SessionFactory, settings: Settings, url: str) -> tuple[Subscriber, str]:
    wallet = Subscriber.wallet(Account.create().address)
    with session_scope(factory) as session:
        view = subscriptions.put_webhook(
            session, wallet, url, settings=settings, cipher=field_cipher(settings)
        )
    assert view.secret is not None
    return wallet, view.secret


def test_the_secret_survives_a_data_key_rotation(
    factory: SessionFactory, watcher_settings: Settings, receiver: Receiver
) -> None:
    wallet, secret = _subscribe(factory, watcher_settings, receiver.url)
    receiver.secrets = [secret]
    targets = {(c.table, c.column): c for c in encrypted_columns()}
    raw = os.urandom(32)
    rotated = FieldCipher.from_spec(
        f"{DEV_DATA_ENCRYPTION_KEYS},k2:{base64.b64encode(raw).decode()}", "k2"
    )
    report = reencrypt_column(
        factory, rotated, targets[("wallet_webhook_endpoints", "secret")], batch_size=2
    )
    assert report.reencrypted == 1 and report.failures == []
    with session_scope(factory) as session:
        stored = session.scalars(select(WalletWebhookEndpoint.secret)).one()
        delivery_id = subscriptions.enqueue(session, wallet, "risk.alert", {"n": 1})
    assert envelope_key_id(stored) == "k2" and secret not in stored

    only_k2 = WebhookSender(factory, FieldCipher({"k2": raw}, "k2"), timeout=5.0)
    try:
        assert only_k2.attempt(delivery_id).status == "delivered"
    finally:
        only_k2.close()
    assert len(receiver.verified()) == 1


def test_a_secret_copied_to_another_wallets_row_does_not_decrypt(
    factory: SessionFactory, watcher_settings: Settings
) -> None:
    first, _ = _subscribe(factory, watcher_settings, "http://127.0.0.1:9/a")
    second, _ = _subscribe(factory, watcher_settings, "http://127.0.0.1:9/b")
    with session_scope(factory) as session:
        theirs = session.scalars(
            select(WalletWebhookEndpoint.secret).where(WalletWebhookEndpoint.wallet == first.id)
        ).one()
        session.execute(
            update(WalletWebhookEndpoint)
            .where(WalletWebhookEndpoint.wallet == second.id)
            .values(secret=theirs)
        )
    cipher = field_cipher(watcher_settings)
    with session_scope(factory) as session, pytest.raises(FieldEncryptionError):
        subscriptions.rotate_secret(session, second, cipher=cipher)
