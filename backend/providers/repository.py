"""All SQL of the providers domain.

`ProviderScope` is what the provider API uses: it is built for one provider id and every query
it runs filters by that id, so one lender's request can never read or change another's rows,
whatever ids it sends (a row that is not yours is simply not found: 404, not 403, so ids of
other lenders' rows are not even confirmed to exist). Its webhook endpoint and deliveries are
read through `backend.providers.webhooks.repository.SubscriberScope`, shared with wallets.

`DeliveryQueue` is the webhook engine's view across subscribers: it claims due deliveries by id
and records attempts; it is used by the Celery tasks, never by an endpoint.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from backend.providers.models import (
    DeliveryStatus,
    Provider,
    ProviderProfile,
    ProviderRateCard,
    WebhookAttempt,
    WebhookDelivery,
)


class ProviderScope:
    """One provider's configuration and deliveries; every statement filters by `provider_id`."""

    def __init__(self, session: Session, provider_id: int) -> None:
        self.session = session
        self.provider_id = provider_id

    def provider(self) -> Provider | None:
        return self.session.execute(
            select(Provider).where(Provider.id == self.provider_id)
        ).scalar_one_or_none()

    def profile(self) -> ProviderProfile | None:
        return self.session.execute(
            select(ProviderProfile).where(ProviderProfile.provider_id == self.provider_id)
        ).scalar_one_or_none()

    def rate_card(self) -> ProviderRateCard | None:
        return self.session.execute(
            select(ProviderRateCard).where(ProviderRateCard.provider_id == self.provider_id)
        ).scalar_one_or_none()

    def add(self, row: ProviderProfile | ProviderRateCard) -> None:
        """Insert a new configuration row of this provider (flushed: errors surface now)."""
        if row.provider_id != self.provider_id:
            raise ValueError(f"row belongs to provider {row.provider_id}, not {self.provider_id}")
        self.session.add(row)
        self.session.flush()


class DeliveryQueue:
    """The webhook engine's queries: due deliveries, leases, attempts."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def due_ids(self, *, now: datetime, limit: int) -> list[int]:
        """Pending deliveries whose time has come and which no live attempt holds."""
        rows = self.session.execute(
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.status == DeliveryStatus.PENDING.value,
                WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until <= now),
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
        )
        return list(rows.scalars())

    def claim(self, delivery_id: int, *, now: datetime, lease_until: datetime) -> bool:
        """Take the lease on a due delivery. At most one caller wins (conditional UPDATE)."""
        result = self.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == DeliveryStatus.PENDING.value,
                WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until <= now),
            )
            .values(leased_until=lease_until)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount) == 1  # type: ignore[attr-defined]

    def get(self, delivery_id: int) -> WebhookDelivery | None:
        return self.session.get(WebhookDelivery, delivery_id, populate_existing=True)

    def held(self, delivery_id: int, lease_until: datetime) -> WebhookDelivery | None:
        """The delivery if our lease still holds it (no one re-claimed it after it lapsed)."""
        delivery = self.get(delivery_id)
        if delivery is None or delivery.leased_until != lease_until:
            return None
        return delivery

    def add_attempt(self, attempt: WebhookAttempt) -> None:
        self.session.add(attempt)
        self.session.flush()
