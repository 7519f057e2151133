"""All SQL of webhook subscriptions, for either kind of subscriber.

`SubscriberScope` is built for one subscriber and every statement filters by it: one
subscriber's request can never read or change another's endpoint, deliveries or attempts,
whatever ids it sends (another's row is simply not found: 404, not 403).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from backend.providers.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpointColumns,
)
from backend.providers.webhooks.subscribers import Subscriber


def endpoint_of(session: Session, subscriber: Subscriber) -> WebhookEndpointColumns | None:
    """The subscriber's endpoint row, if it set one."""
    statement = select(subscriber.endpoint_model).where(subscriber.endpoint_key == subscriber.id)
    row = session.execute(statement).scalar_one_or_none()
    return row if isinstance(row, WebhookEndpointColumns) else None


def _owned_by(subscriber: Subscriber, model: Any) -> ColumnElement[bool]:
    if subscriber.kind == "wallet":
        return model.wallet == subscriber.wallet_address  # type: ignore[no-any-return]
    return model.provider_id == subscriber.provider_id  # type: ignore[no-any-return]


class SubscriberScope:
    """One subscriber's endpoint and deliveries; every statement filters by the subscriber."""

    def __init__(self, session: Session, subscriber: Subscriber) -> None:
        self.session = session
        self.subscriber = subscriber

    def endpoint(self) -> WebhookEndpointColumns | None:
        return endpoint_of(self.session, self.subscriber)

    def add(self, row: WebhookEndpointColumns | WebhookDelivery) -> None:
        """Insert a row of this subscriber (flushed: errors surface now)."""
        self.session.add(row)
        self.session.flush()

    def delivery(self, delivery_id: int) -> WebhookDelivery | None:
        return self.session.execute(
            select(WebhookDelivery).where(
                WebhookDelivery.id == delivery_id, _owned_by(self.subscriber, WebhookDelivery)
            )
        ).scalar_one_or_none()

    def deliveries(
        self, *, before_id: int | None, limit: int, status: str | None = None
    ) -> Sequence[WebhookDelivery]:
        """Newest first, `limit` at a time, below `before_id` (keyset pagination)."""
        statement = select(WebhookDelivery).where(_owned_by(self.subscriber, WebhookDelivery))
        if before_id is not None:
            statement = statement.where(WebhookDelivery.id < before_id)
        if status is not None:
            statement = statement.where(WebhookDelivery.status == status)
        statement = statement.order_by(WebhookDelivery.id.desc()).limit(limit)
        return self.session.execute(statement).scalars().all()

    def attempts(self, delivery_id: int) -> Sequence[WebhookAttempt]:
        return (
            self.session.execute(
                select(WebhookAttempt)
                .where(
                    WebhookAttempt.delivery_id == delivery_id,
                    _owned_by(self.subscriber, WebhookAttempt),
                )
                .order_by(WebhookAttempt.attempt_number)
            )
            .scalars()
            .all()
        )

    def rearm(self, delivery_id: int, *, now: datetime) -> int:
        """Make a delivery due now with a fresh retry schedule, unless an attempt holds it.

        One conditional UPDATE, so it cannot interleave with a worker's claim. Returns the
        number of rows changed (0: not this subscriber's, or in flight).
        """
        result = self.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                _owned_by(self.subscriber, WebhookDelivery),
                or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until <= now),
            )
            .values(
                status=DeliveryStatus.PENDING.value,
                next_attempt_at=now,
                armed_at_attempt=WebhookDelivery.attempt_count,
                leased_until=None,
            )
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
