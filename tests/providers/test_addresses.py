"""The DNS-rebinding guard: outside development and test, webhook hosts are resolved at every
attempt and any non-public address is refused (and logged); a public one is connected to as
the very address that was checked. Resolution here is real (`localhost` resolves to loopback).
"""

from __future__ import annotations

import base64
import os
import secrets

import pytest
from eth_account import Account

from backend.config import DEV_DATA_ENCRYPTION_KEYS, Settings
from backend.db import SessionFactory, session_scope
from backend.providers.pii import field_cipher
from backend.providers.webhooks import subscriptions
from backend.providers.webhooks.addresses import pin_public_address, public_hosts_only
from backend.providers.webhooks.delivery import WebhookSender
from backend.providers.webhooks.subscribers import Subscriber
from tests.support.webhooks import Receiver

from .conftest import SettingsFactory


@pytest.fixture
def production(make_settings: SettingsFactory) -> Settings:
    """Production-like settings (strong secrets; the dev data key kept only to read old rows)."""
    return make_settings(
        environment="production",
        secret_key=secrets.token_urlsafe(32),
        session_secret=secrets.token_urlsafe(32),
        receipt_signing_key=secrets.token_hex(32),
        data_encryption_keys=f"{DEV_DATA_ENCRYPTION_KEYS},prod1:"
        + base64.b64encode(os.urandom(32)).decode(),
        data_encryption_active_key="prod1",
    )


def test_the_guard_is_on_everywhere_but_development_and_test(
    production: Settings, settings: Settings, make_settings: SettingsFactory
) -> None:
    assert public_hosts_only(production)
    assert not public_hosts_only(settings)
    assert not public_hosts_only(make_settings(environment="development"))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://localhost:8080/hooks", "loopback"),  # a name: resolved for real
        ("https://localhost/hooks", "loopback"),
        ("http://127.0.0.1/hooks", "loopback"),
        ("http://[::1]:9000/hooks", "loopback"),
        ("http://10.1.2.3/hooks", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://224.0.0.1/hooks", "multicast"),
        ("http://0.0.0.0/hooks", "unspecified"),
        ("http://240.0.0.1/hooks", "reserved"),
        ("http://[::ffff:127.0.0.1]/hooks", "loopback"),
    ],
)
def test_non_public_addresses_are_refused_with_the_reason(url: str, reason: str) -> None:
    target = pin_public_address(url)
    assert target.refusal is not None and "refused to connect" in target.refusal
    assert f"({reason})" in target.refusal, target.refusal


def test_an_unresolvable_host_is_refused_not_raised() -> None:
    target = pin_public_address("https://no-such-host.invalid/hooks")
    assert target.refusal is not None and "could not resolve" in target.refusal


def test_a_public_address_is_pinned_with_the_original_host_and_server_name() -> None:
    plain = pin_public_address("http://93.184.216.34:8443/h?x=1")
    assert plain.refusal is None
    assert plain.url == "http://93.184.216.34:8443/h?x=1"
    assert plain.headers == {"Host": "93.184.216.34:8443"} and plain.extensions == {}
    tls = pin_public_address("https://[2606:2800:220:1:248:1893:25c8:1946]/h")
    assert tls.refusal is None and tls.url == "https://[2606:2800:220:1:248:1893:25c8:1946]/h"
    assert tls.extensions == {"sni_hostname": "2606:2800:220:1:248:1893:25c8:1946"}


def test_a_delivery_to_localhost_is_refused_and_logged_under_production_settings(
    production: Settings,
    settings: Settings,
    session_factory: SessionFactory,
    receiver: Receiver,
) -> None:
    wallet = Subscriber.wallet(Account.create().address)
    url = receiver.url.replace("127.0.0.1", "localhost")
    with session_scope(session_factory) as session:
        view = subscriptions.put_webhook(
            session, wallet, url, settings=settings, cipher=field_cipher(settings)
        )
        delivery_id = subscriptions.enqueue(session, wallet, "risk.alert", {"n": 1})
    assert view.secret is not None
    receiver.secrets = [view.secret]

    guarded = WebhookSender(
        session_factory,
        field_cipher(production),
        public_hosts_only=public_hosts_only(production),
        timeout=5.0,
    )
    try:
        result = guarded.attempt(delivery_id)
    finally:
        guarded.close()
    assert result.status == "pending" and result.status_code is None
    assert result.error is not None and "refused to connect" in result.error
    assert "'localhost'" in result.error and "(loopback)" in result.error
    assert receiver.received == []  # no connection was made
    with session_scope(session_factory) as session:
        delivery, attempts = subscriptions.get_delivery(session, wallet, delivery_id)
        assert delivery.last_error == result.error
        assert [(a.url, a.status_code, a.error) for a in attempts] == [(url, None, result.error)]
        subscriptions.redeliver(session, wallet, delivery_id)

    # The same delivery, unguarded (development/test), reaches the receiver and verifies.
    relaxed = WebhookSender(session_factory, field_cipher(settings), timeout=5.0)
    try:
        assert relaxed.attempt(delivery_id).status == "delivered"
    finally:
        relaxed.close()
    assert len(receiver.verified()) == 1
