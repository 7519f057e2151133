"""Provider configuration and webhook events: the logic, no HTTP, no commit.

Every function takes `(session, provider_id, ...)` and works through `ProviderScope`, which
filters every query by that provider: isolation does not depend on the caller remembering to.
The webhook functions are the shared subscription service's (`webhooks.subscriptions`) for
this provider as a `Subscriber`, after checking the provider exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from backend.config import Settings
from backend.kit.columns import utcnow
from backend.kit.crypto import FieldCipher
from backend.providers.exceptions import ProviderNotFound, RateCardNotFound
from backend.providers.models import (
    ProviderProfile,
    ProviderRateCard,
    WebhookAttempt,
    WebhookDelivery,
)
from backend.providers.pii import ProviderSealer
from backend.providers.rate_cards import RateCard
from backend.providers.repository import ProviderScope
from backend.providers.webhooks import subscriptions
from backend.providers.webhooks.delivery import Dispatcher
from backend.providers.webhooks.rules import (  # noqa: F401 - re-exported for callers
    DEFAULT_ROTATION_GRACE,
    SECRET_PREFIX,
    WebhookView,
    check_webhook_url,
    new_signing_secret,
)
from backend.providers.webhooks.subscribers import Subscriber

_PROFILES = ProviderProfile.__tablename__


def _scope(session: Session, provider_id: int) -> ProviderScope:
    scope = ProviderScope(session, provider_id)
    if scope.provider() is None:
        raise ProviderNotFound(
            f"provider {provider_id} does not exist",
            hint="Use an API key of an existing provider.",
        )
    return scope


# Profile ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileView:
    provider_id: int
    name: str
    kind: str
    status: str
    display_name: str | None
    contact_email: str | None
    contact_phone: str | None
    updated_at: datetime | None
    payout_address: str | None = None


def get_profile(session: Session, provider_id: int, *, cipher: FieldCipher) -> ProfileView:
    scope = _scope(session, provider_id)
    return _profile_view(scope, scope.profile(), cipher)


def update_profile(
    session: Session,
    provider_id: int,
    changes: Mapping[str, str | None],
    *,
    cipher: FieldCipher,
    now: datetime | None = None,
) -> ProfileView:
    """Set the fields present in `changes` (None clears one); personal data is encrypted."""
    scope = _scope(session, provider_id)
    profile = scope.profile()
    if profile is None:
        profile = ProviderProfile(provider_id=provider_id)
        scope.add(profile)
    sealer = ProviderSealer(cipher, provider_id)
    if "display_name" in changes:
        profile.display_name = changes["display_name"]
    for column in ("contact_email", "contact_phone"):
        if column in changes:
            setattr(profile, column, sealer.seal(changes[column], _PROFILES, column))
    if "payout_address" in changes:
        address = changes["payout_address"]
        profile.payout_address = address.lower() if address is not None else None
    profile.updated_at = now or utcnow()
    session.flush()
    return _profile_view(scope, profile, cipher)


def _profile_view(
    scope: ProviderScope, profile: ProviderProfile | None, cipher: FieldCipher
) -> ProfileView:
    provider = scope.provider()
    assert provider is not None
    sealer = ProviderSealer(cipher, provider.id)
    return ProfileView(
        provider_id=provider.id,
        name=provider.name,
        kind=provider.kind,
        status=provider.status,
        display_name=profile.display_name if profile else None,
        contact_email=sealer.open(profile.contact_email, _PROFILES, "contact_email")
        if profile
        else None,
        contact_phone=sealer.open(profile.contact_phone, _PROFILES, "contact_phone")
        if profile
        else None,
        updated_at=profile.updated_at if profile else None,
        payout_address=profile.payout_address if profile else None,
    )


def payout_address(session: Session, provider_id: int) -> str | None:
    """The lender's payout address (lower-case hex), or None if it never set one."""
    profile = _scope(session, provider_id).profile()
    return profile.payout_address if profile is not None else None


# Rate card -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateCardView:
    version: int
    updated_at: datetime
    card: RateCard


def get_rate_card(session: Session, provider_id: int) -> RateCardView:
    row = _scope(session, provider_id).rate_card()
    if row is None:
        raise RateCardNotFound(
            "you have not set a rate card yet",
            hint="PUT /v1/provider/rate-card with your amounts, APR bands, fees and terms.",
        )
    return RateCardView(row.version, row.updated_at, RateCard.model_validate(row.document))


def put_rate_card(
    session: Session, provider_id: int, card: RateCard, *, now: datetime | None = None
) -> RateCardView:
    """Replace the card whole; `version` goes up by one so quotes can name what priced them."""
    scope = _scope(session, provider_id)
    moment = now or utcnow()
    row = scope.rate_card()
    if row is None:
        row = ProviderRateCard(
            provider_id=provider_id, version=1, document=card.document(), updated_at=moment
        )
        scope.add(row)
    else:
        row.version += 1
        row.document = card.document()
        row.updated_at = moment
        session.flush()
    return RateCardView(row.version, row.updated_at, card)


# Webhook endpoint ------------------------------------------------------------------------------


def get_webhook(session: Session, provider_id: int) -> WebhookView:
    return subscriptions.get_webhook(session, _subscriber(session, provider_id))


def put_webhook(
    session: Session,
    provider_id: int,
    url: str,
    *,
    settings: Settings,
    cipher: FieldCipher,
    now: datetime | None = None,
) -> WebhookView:
    """Set the endpoint URL (the first time, the signing secret is made and shown once)."""
    subscriber = _subscriber(session, provider_id)
    return subscriptions.put_webhook(
        session, subscriber, url, settings=settings, cipher=cipher, now=now
    )


def rotate_secret(
    session: Session,
    provider_id: int,
    *,
    cipher: FieldCipher,
    grace: timedelta = DEFAULT_ROTATION_GRACE,
    now: datetime | None = None,
) -> WebhookView:
    """A new secret (shown once); the current one keeps signing beside it for `grace`."""
    subscriber = _subscriber(session, provider_id)
    return subscriptions.rotate_secret(session, subscriber, cipher=cipher, grace=grace, now=now)


def _subscriber(session: Session, provider_id: int) -> Subscriber:
    """The provider as a webhook subscriber (404 if it does not exist)."""
    _scope(session, provider_id)
    return Subscriber.provider(provider_id)


# Events and deliveries -------------------------------------------------------------------------


def enqueue_event(
    session: Session,
    provider_id: int,
    event_type: str,
    payload: Mapping[str, Any],
    *,
    now: datetime | None = None,
    dispatcher: Dispatcher | None = None,
) -> int:
    """Record a webhook for `provider_id` in the caller's transaction; return the delivery id.

    The rest of the system (credit requests, acceptances) calls this inside its own unit of
    work: the event exists if and only if that work commits (see `subscriptions.enqueue`).
    """
    subscriber = _subscriber(session, provider_id)
    return subscriptions.enqueue(
        session, subscriber, event_type, payload, now=now, dispatcher=dispatcher
    )


def list_deliveries(
    session: Session,
    provider_id: int,
    *,
    before_id: int | None,
    limit: int,
    status: str | None = None,
) -> Sequence[WebhookDelivery]:
    subscriber = _subscriber(session, provider_id)
    return subscriptions.list_deliveries(
        session, subscriber, before_id=before_id, limit=limit, status=status
    )


def get_delivery(
    session: Session, provider_id: int, delivery_id: int
) -> tuple[WebhookDelivery, Sequence[WebhookAttempt]]:
    return subscriptions.get_delivery(session, _subscriber(session, provider_id), delivery_id)


def redeliver(
    session: Session,
    provider_id: int,
    delivery_id: int,
    *,
    now: datetime | None = None,
    dispatcher: Dispatcher | None = None,
) -> WebhookDelivery:
    """Send a delivery again now, with a fresh retry schedule (whatever its status)."""
    subscriber = _subscriber(session, provider_id)
    return subscriptions.redeliver(session, subscriber, delivery_id, now=now, dispatcher=dispatcher)
