"""Webhook delivery against a real local HTTP receiver, with time driven by a fake clock."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from backend.config import Settings
from backend.db import SessionFactory, session_scope
from backend.providers.deps import DISPATCHER_STATE
from backend.providers.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from backend.providers.pii import field_cipher
from backend.providers.service import (
    enqueue_event,
    put_webhook,
    redeliver,
    rotate_secret,
)
from backend.providers.webhooks.delivery import BACKOFF_SCHEDULE, MAX_ATTEMPTS, WebhookSender
from tests.support.webhooks import Receiver

from .conftest import FakeClock, bearer, create_provider


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sender(
    session_factory: SessionFactory, settings: Settings, clock: FakeClock
) -> Iterator[WebhookSender]:
    sender = WebhookSender(session_factory, field_cipher(settings), clock=clock, timeout=2.0)
    try:
        yield sender
    finally:
        sender.close()


def configured_lender(
    settings: Settings, factory: SessionFactory, receiver: Receiver, clock: FakeClock
) -> int:
    provider_id, _ = create_provider(settings)
    with session_scope(factory) as session:
        view = put_webhook(
            session,
            provider_id,
            receiver.url,
            settings=settings,
            cipher=field_cipher(settings),
            now=clock(),
        )
    assert view.secret is not None
    receiver.secrets = [view.secret]
    receiver.clock = clock.unix
    return provider_id


def event(factory: SessionFactory, provider_id: int, clock: FakeClock, **payload: object) -> int:
    with session_scope(factory) as session:
        return enqueue_event(session, provider_id, "credit_request.created", payload, now=clock())


def load(factory: SessionFactory, delivery_id: int) -> tuple[WebhookDelivery, list[WebhookAttempt]]:
    with session_scope(factory) as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        attempts = (
            session.query(WebhookAttempt)
            .filter(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.attempt_number)
            .all()
        )
        session.expunge_all()
        return delivery, attempts


def test_delivered_on_first_try_with_a_verifiable_signature(
    settings: Settings,
    session_factory: SessionFactory,
    receiver: Receiver,
    clock: FakeClock,
    sender: WebhookSender,
) -> None:
    provider_id = configured_lender(settings, session_factory, receiver, clock)
    delivery_id = event(session_factory, provider_id, clock, amount="1000000", asset="USDC")
    assert sender.due() == [delivery_id] or delivery_id in sender.due()

    result = sender.attempt(delivery_id)
    assert result.attempted and result.status == "delivered" and result.status_code == 200
    [got] = receiver.received
    assert got.error is None and got.verified_timestamp == clock.unix()
    body = got.json()
    assert body["type"] == "credit_request.created"
    assert body["data"] == {"amount": "1000000", "asset": "USDC"}
    assert got.headers["Credagg-Event-Id"] == body["id"]
    delivery, attempts = load(session_factory, delivery_id)
    assert delivery.status == "delivered" and delivery.delivered_at == clock()
    assert [a.status_code for a in attempts] == [200]
    # Already delivered: a duplicate message does nothing.
    assert sender.attempt(delivery_id).attempted is False
    assert len(receiver.received) == 1


def test_failures_follow_the_backoff_schedule_then_fail(
    settings: Settings,
    session_factory: SessionFactory,
    receiver: Receiver,
    clock: FakeClock,
    sender: WebhookSender,
) -> None:
    provider_id = configured_lender(settings, session_factory, receiver, clock)
    receiver.fail_next = 10**6
    delivery_id = event(session_factory, provider_id, clock)
    for number, wait in enumerate(BACKOFF_SCHEDULE, start=1):
        result = sender.attempt(delivery_id)
        assert result.status == "pending" and result.status_code == 500
        assert result.next_attempt_at == clock() + wait
        # Not due a moment before its time; due at it.
        clock.advance(wait - timedelta(seconds=1))
        assert delivery_id not in sender.due()
        assert sender.attempt(delivery_id).attempted is False
        clock.advance(timedelta(seconds=1))
        assert delivery_id in sender.due()
        assert len(receiver.received) == number
    last = sender.attempt(delivery_id)
    assert last.status == "failed" and last.next_attempt_at is None
    delivery, attempts = load(session_factory, delivery_id)
    assert delivery.attempt_count == MAX_ATTEMPTS == len(attempts) == 7
    assert delivery.last_status_code == 500 and "HTTP 500" in (delivery.last_error or "")
    assert all(r.error is None for r in receiver.received)  # every attempt was signed right
    clock.advance(timedelta(days=2))
    assert delivery_id not in sender.due()


def test_retried_after_failures_then_delivered(
    settings: Settings,
    session_factory: SessionFactory,
    receiver: Receiver,
    clock: FakeClock,
    sender: WebhookSender,
) -> None:
    provider_id = configured_lender(settings, session_factory, receiver, clock)
    receiver.fail_next = 2
    delivery_id = event(session_factory, provider_id, clock)
    assert sender.attempt(delivery_id).status == "pending"
    clock.advance(BACKOFF_SCHEDULE[0])
    assert sender.attempt(delivery_id).status == "pending"
    clock.advance(BACKOFF_SCHEDULE[1])
    assert sender.attempt(delivery_id).status == "delivered"
    _, attempts = load(session_factory, delivery_id)
    assert [a.status_code for a in attempts] == [500, 500, 200]
    assert [a.attempt_number for a in attempts] == [1, 2, 3]
    ids = {r.json()["id"] for r in receiver.received}
    assert len(ids) == 1  # the same event id every time, so the lender can dedupe


def test_a_slow_endpoint_times_out_and_is_retried(
    settings: Settings,
    session_factory: SessionFactory,
    receiver: Receiver,
    clock: FakeClock,
) -> None:
    provider_id = configured_lender(settings, session_factory, receiver, clock)
    receiver.delay = 1.5
    delivery_id = event(session_factory, provider_id, clock)
    impatient = WebhookSender(session_factory, field_cipher(settings), clock=clock, timeout=0.3)
    try:
        result = impatient.attempt(delivery_id)
    finally:
        impatient.close()
    assert result.status == "pending" and result.status_code is None
    assert result.error is not None and "no answer within" in result.error
    assert result.next_attempt_at == clock() + BACKOFF_SCHEDULE[0]


def test_no_endpoint_is_an_attempt_that_fails_and_retries(
    settings: Settings, session_factory: SessionFactory, clock: FakeClock, sender: WebhookSender
) -> None:
    provider_id, _ = create_provider(settings)
    delivery_id = event(session_factory, provider_id, clock)
    result = sender.attempt(delivery_id)
    assert result.status == "pending" and "no webhook endpoint" in (result.error or "")


def test_rotation_signs_with_both_secrets_during_the_grace_period(
    settings: Settings,
    session_factory: SessionFactory,
    receiver: Receiver,
    clock: FakeClock,
    sender: WebhookSender,
) -> None:
    provider_id = configured_lender(settings, session_factory, receiver, clock)
    [old_secret] = receiver.secrets
    with session_scope(session_factory) as session:
        rotated = rotate_secret(
            session,
            provider_id,
            cipher=field_cipher(settings),
            grace=timedelta(hours=1),
            now=clock(),
        )
    assert rotated.secret is not None and rotated.secret != old_secret

    # Within the grace period a receiver with only the old secret still verifies...
    sender.attempt(event(session_factory, provider_id, clock))
    assert receiver.received[-1].error is None
    assert receiver.received[-1].headers["Credagg-Signature"].count("v1=") == 2
    # ...and so does one that switched to the new secret.
    receiver.secrets = [rotated.secret]
    sender.attempt(event(session_factory, provider_id, clock))
    assert receiver.received[-1].error is None

    # After it, only the new secret signs: the old one no longer verifies.
    clock.advance(timedelta(hours=1, seconds=1))
    receiver.secrets = [old_secret]
    result = sender.attempt(event(session_factory, provider_id, clock))
    assert result.status_code == 400 and result.status == "pending"
    assert receiver.received[-1].headers["Credagg-Signature"].count("v1=") == 1
    assert "no signature matches" in (receiver.received[-1].error or "")


def test_a_delayed_request_fails_the_receivers_tolerance(
    settings: Settings,
    session_factory: SessionFactory,
    receiver: Receiver,
    clock: FakeClock,
    sender: WebhookSender,
) -> None:
    """A request signed at t and checked more than 5 minutes later (replay) is refused."""
    provider_id = configured_lender(settings, session_factory, receiver, clock)
    signed_at = clock.unix()
    receiver.clock = lambda: signed_at + 301
    result = sender.attempt(event(session_factory, provider_id, clock))
    assert result.status_code == 400
    assert "tolerance 300s" in (receiver.received[-1].error or "")


def test_redelivery_rearms_a_failed_delivery_with_a_fresh_schedule(
    settings: Settings,
    session_factory: SessionFactory,
    receiver: Receiver,
    clock: FakeClock,
    sender: WebhookSender,
    client: TestClient,
) -> None:
    provider_id, key = create_provider(settings)
    with session_scope(session_factory) as session:
        view = put_webhook(
            session,
            provider_id,
            receiver.url,
            settings=settings,
            cipher=field_cipher(settings),
            now=clock(),
        )
    receiver.secrets, receiver.clock = [view.secret or ""], clock.unix
    receiver.fail_next = 10**6
    delivery_id = event(session_factory, provider_id, clock)
    while sender.attempt(delivery_id).status != "failed":
        clock.advance(timedelta(hours=12))
    receiver.fail_next = 1

    queued = Recorder()
    setattr(client.app.state, DISPATCHER_STATE, queued)  # type: ignore[attr-defined]
    response = client.post(
        f"/v1/provider/webhook/deliveries/{delivery_id}/redeliver", headers=bearer(key)
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    assert queued.sent == [delivery_id]  # queued once the request committed
    # The API re-armed it on the real clock; re-arm on ours to drive the schedule.
    with session_scope(session_factory) as session:
        redeliver(session, provider_id, delivery_id, now=clock())
    first = sender.attempt(delivery_id)
    assert first.status == "pending" and first.next_attempt_at == clock() + BACKOFF_SCHEDULE[0]
    clock.advance(BACKOFF_SCHEDULE[0])
    assert sender.attempt(delivery_id).status == "delivered"
    delivery, attempts = load(session_factory, delivery_id)
    assert delivery.attempt_count == len(attempts) == MAX_ATTEMPTS + 2


def test_only_one_of_two_claims_wins(
    settings: Settings, session_factory: SessionFactory, clock: FakeClock
) -> None:
    from backend.providers.repository import DeliveryQueue

    provider_id, _ = create_provider(settings)
    delivery_id = event(session_factory, provider_id, clock)
    lease = clock() + timedelta(seconds=60)
    with session_scope(session_factory) as session:
        assert DeliveryQueue(session).claim(delivery_id, now=clock(), lease_until=lease)
    with session_scope(session_factory) as session:
        assert not DeliveryQueue(session).claim(delivery_id, now=clock(), lease_until=lease)
    clock.advance(timedelta(seconds=61))  # the holder died: its lease lapses
    with session_scope(session_factory) as session:
        assert DeliveryQueue(session).claim(delivery_id, now=clock(), lease_until=clock())


class Recorder:
    def __init__(self) -> None:
        self.sent: list[int] = []

    def __call__(self, delivery_ids: Sequence[int]) -> None:
        self.sent.extend(delivery_ids)


def test_tasks_are_queued_only_after_commit(
    settings: Settings, session_factory: SessionFactory, clock: FakeClock
) -> None:
    provider_id, _ = create_provider(settings)
    recorder = Recorder()
    session = session_factory()
    try:
        enqueue_event(session, provider_id, "test.ping", {"n": 1}, dispatcher=recorder)
        assert recorder.sent == []
        session.rollback()
        committed = enqueue_event(session, provider_id, "test.ping", {"n": 2}, dispatcher=recorder)
        assert recorder.sent == []
        session.commit()
    finally:
        session.close()
    assert recorder.sent == [committed]  # once, after the commit; nothing for the rollback
    with session_scope(session_factory) as check:
        rows = check.query(WebhookDelivery).filter_by(provider_id=provider_id).all()
        assert [(row.id, row.payload, row.status) for row in rows] == [
            (committed, {"n": 2}, DeliveryStatus.PENDING.value)
        ]


def test_event_types_are_checked(settings: Settings, session_factory: SessionFactory) -> None:
    provider_id, _ = create_provider(settings)
    with session_scope(session_factory) as session, pytest.raises(ValueError, match="look like"):
        enqueue_event(session, provider_id, "NotAType", {})
