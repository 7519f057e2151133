"""A subscriber's webhook: endpoint, secret rotation, events and deliveries (no HTTP, no commit).

Every function takes `(session, subscriber, ...)` for either kind of subscriber - a provider or
a wallet - and works through `SubscriberScope`, which filters every query by that subscriber.
The rules are `webhooks.rules`: the same URL checks, secret format,
rotation grace, event type grammar and redelivery semantics, so a wallet's webhook behaves
exactly like a lender's.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from backend.config import Settings
from backend.kit.columns import utcnow
from backend.kit.crypto import FieldCipher
from backend.providers.exceptions import DeliveryInFlight, DeliveryNotFound, WebhookNotConfigured
from backend.providers.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpointColumns,
)
from backend.providers.webhooks.delivery import (
    SESSION_DISPATCHER,
    Dispatcher,
    dispatch_after_commit,
)
from backend.providers.webhooks.repository import SubscriberScope
from backend.providers.webhooks.rules import (
    DEFAULT_ROTATION_GRACE,
    EVENT_TYPE,
    WebhookView,
    check_webhook_url,
    new_signing_secret,
)
from backend.providers.webhooks.subscribers import Subscriber

#: Where each kind of subscriber manages its webhook (for the hints of errors).
API_PREFIX = {"provider": "/v1/provider", "wallet": "/v1/me"}


def _not_configured(subscriber: Subscriber, detail: str) -> WebhookNotConfigured:
    return WebhookNotConfigured(
        detail, hint=f'PUT {API_PREFIX[subscriber.kind]}/webhook with {{"url": "https://..."}}.'
    )


def get_webhook(session: Session, subscriber: Subscriber) -> WebhookView:
    endpoint = SubscriberScope(session, subscriber).endpoint()
    if endpoint is None:
        raise _not_configured(subscriber, "you have not set a webhook endpoint yet")
    return _view(endpoint)


def put_webhook(
    session: Session,
    subscriber: Subscriber,
    url: str,
    *,
    settings: Settings,
    cipher: FieldCipher,
    now: datetime | None = None,
) -> WebhookView:
    """Set the endpoint URL. The first time, a signing secret is made and shown once;
    changing the URL later keeps the secret (rotate it with `rotate_secret`)."""
    checked = check_webhook_url(url, settings)
    scope = SubscriberScope(session, subscriber)
    moment = now or utcnow()
    endpoint = scope.endpoint()
    if endpoint is not None:
        endpoint.url = checked
        endpoint.updated_at = moment
        session.flush()
        return _view(endpoint)
    secret = new_signing_secret()
    sealer = subscriber.sealer(cipher)
    sealed = sealer.seal(secret, sealer.table, "secret")
    assert sealed is not None
    endpoint = subscriber.new_endpoint(
        url=checked, secret=sealed, created_at=moment, updated_at=moment
    )
    scope.add(endpoint)
    return _view(endpoint, secret=secret)


def rotate_secret(
    session: Session,
    subscriber: Subscriber,
    *,
    cipher: FieldCipher,
    grace: timedelta = DEFAULT_ROTATION_GRACE,
    now: datetime | None = None,
) -> WebhookView:
    """A new secret (shown once); the current one keeps signing beside it for `grace`.

    Rotating again within a grace period drops the oldest secret at once: at most two secrets
    ever sign, the newest and the one it replaced.
    """
    endpoint = SubscriberScope(session, subscriber).endpoint()
    if endpoint is None:
        raise _not_configured(
            subscriber, "there is no webhook secret to rotate: no endpoint is set"
        )
    moment = now or utcnow()
    sealer = subscriber.sealer(cipher)
    current = sealer.open(endpoint.secret, sealer.table, "secret")
    keep = grace > timedelta(0)
    endpoint.previous_secret = (
        sealer.seal(current, sealer.table, "previous_secret") if keep else None
    )
    endpoint.previous_secret_expires_at = moment + grace if keep else None
    secret = new_signing_secret()
    sealed = sealer.seal(secret, sealer.table, "secret")
    assert sealed is not None
    endpoint.secret = sealed
    endpoint.updated_at = moment
    session.flush()
    return _view(endpoint, secret=secret)


def _view(endpoint: WebhookEndpointColumns, *, secret: str | None = None) -> WebhookView:
    return WebhookView(
        url=endpoint.url,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
        previous_secret_expires_at=endpoint.previous_secret_expires_at,
        secret=secret,
    )


# Events and deliveries -------------------------------------------------------------------------


def enqueue(
    session: Session,
    subscriber: Subscriber,
    event_type: str,
    payload: Mapping[str, Any],
    *,
    now: datetime | None = None,
    dispatcher: Dispatcher | None = None,
) -> int:
    """Record a webhook for `subscriber` in the caller's transaction; return the delivery id.

    The event exists if and only if the caller's work commits; a `providers.deliver` task is
    queued after the commit through `dispatcher` (default: the one the session carries), and
    without one the beat sweep sends it within its interval.
    """
    if not EVENT_TYPE.match(event_type) or len(event_type) > 64:
        raise ValueError(f"event type {event_type!r} must look like 'credit_request.created'")
    moment = now or utcnow()
    delivery = WebhookDelivery(
        event_id=f"evt_{uuid.uuid4().hex}",
        provider_id=subscriber.provider_id,
        wallet=subscriber.wallet_address,
        event_type=event_type,
        payload=dict(payload),
        status=DeliveryStatus.PENDING.value,
        attempt_count=0,
        armed_at_attempt=0,
        next_attempt_at=moment,
        created_at=moment,
    )
    SubscriberScope(session, subscriber).add(delivery)
    _queue_after_commit(session, delivery.id, dispatcher)
    return delivery.id


def _queue_after_commit(session: Session, delivery_id: int, dispatcher: Dispatcher | None) -> None:
    chosen = dispatcher or session.info.get(SESSION_DISPATCHER)
    if chosen is not None:
        dispatch_after_commit(session, delivery_id, chosen)


def list_deliveries(
    session: Session,
    subscriber: Subscriber,
    *,
    before_id: int | None,
    limit: int,
    status: str | None = None,
) -> Sequence[WebhookDelivery]:
    scope = SubscriberScope(session, subscriber)
    return scope.deliveries(before_id=before_id, limit=limit, status=status)


def get_delivery(
    session: Session, subscriber: Subscriber, delivery_id: int
) -> tuple[WebhookDelivery, Sequence[WebhookAttempt]]:
    scope = SubscriberScope(session, subscriber)
    delivery = scope.delivery(delivery_id)
    if delivery is None:
        raise _delivery_not_found(subscriber, delivery_id)
    return delivery, scope.attempts(delivery_id)


def redeliver(
    session: Session,
    subscriber: Subscriber,
    delivery_id: int,
    *,
    now: datetime | None = None,
    dispatcher: Dispatcher | None = None,
) -> WebhookDelivery:
    """Send a delivery again now, with a fresh retry schedule (whatever its status)."""
    scope = SubscriberScope(session, subscriber)
    moment = now or utcnow()
    if scope.delivery(delivery_id) is None:
        raise _delivery_not_found(subscriber, delivery_id)
    if scope.rearm(delivery_id, now=moment) == 0:
        raise DeliveryInFlight(
            f"delivery {delivery_id} is being attempted right now",
            hint="Wait for the attempt to finish (at most a minute), then check its status.",
        )
    session.expire_all()
    delivery = scope.delivery(delivery_id)
    assert delivery is not None
    _queue_after_commit(session, delivery_id, dispatcher)
    return delivery


def _delivery_not_found(subscriber: Subscriber, delivery_id: int) -> DeliveryNotFound:
    return DeliveryNotFound(
        f"you have no webhook delivery {delivery_id}",
        hint=f"List yours with GET {API_PREFIX[subscriber.kind]}/webhook/deliveries.",
    )
