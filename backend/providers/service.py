"""Provider configuration and webhook events: the logic, no HTTP, no commit.

Every function takes `(session, provider_id, ...)` and works through `ProviderScope`, which
filters every query by that provider: isolation does not depend on the caller remembering to.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from backend.config import Settings
from backend.kit.columns import utcnow
from backend.kit.crypto import FieldCipher
from backend.providers.exceptions import (
    DeliveryInFlight,
    DeliveryNotFound,
    InvalidWebhookUrl,
    ProviderNotFound,
    RateCardNotFound,
    WebhookNotConfigured,
)
from backend.providers.models import (
    ProviderProfile,
    ProviderRateCard,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from backend.providers.pii import ProviderSealer
from backend.providers.rate_cards import RateCard
from backend.providers.repository import ProviderScope
from backend.providers.webhooks.delivery import (
    SESSION_DISPATCHER,
    Dispatcher,
    dispatch_after_commit,
)

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
DEFAULT_ROTATION_GRACE = timedelta(hours=24)
_PROFILES = ProviderProfile.__tablename__
_ENDPOINTS = WebhookEndpoint.__tablename__
_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


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


@dataclass(frozen=True)
class WebhookView:
    url: str
    created_at: datetime
    updated_at: datetime
    previous_secret_expires_at: datetime | None
    secret: str | None = None  # only when it was just created


def new_signing_secret() -> str:
    """`whsec_` + 256 random bits (base64url)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def check_webhook_url(url: str, settings: Settings) -> str:
    """The URL if we may POST events to it, else `InvalidWebhookUrl` saying what to change.

    HTTPS only outside development and test (plain HTTP would expose events and let anyone on
    the path replay them within the tolerance). In production, hosts that are IP literals in
    private, loopback or link-local ranges are refused too, so a lender cannot point our
    workers at our own network.
    """
    url = url.strip()
    parts = urlsplit(url)
    relaxed = settings.environment in ("development", "test")
    allowed_schemes = ("https", "http") if relaxed else ("https",)
    if parts.scheme not in allowed_schemes:
        raise InvalidWebhookUrl(
            f"webhook URL scheme {parts.scheme or '(none)'!r} is not allowed here",
            hint="Use an https:// URL"
            + (" (http:// is accepted only in development and test)." if not relaxed else "."),
        )
    if not parts.hostname:
        raise InvalidWebhookUrl(
            "the webhook URL has no host", hint="Send an absolute URL like https://example.com/h."
        )
    if parts.username or parts.password:
        raise InvalidWebhookUrl(
            "the webhook URL carries credentials (user:password@)",
            hint="Remove them; verify our requests with the Credagg-Signature header instead.",
        )
    if parts.fragment:
        raise InvalidWebhookUrl(
            "the webhook URL has a #fragment, which is never sent", hint="Remove the fragment."
        )
    try:
        port = parts.port
    except ValueError:
        raise InvalidWebhookUrl(
            "the webhook URL has an invalid port", hint="Use a port between 1 and 65535."
        ) from None
    del port
    if not relaxed:
        host = parts.hostname
        if host == "localhost" or host.endswith(".localhost"):
            raise InvalidWebhookUrl(
                f"webhook host {host!r} is this machine", hint="Use a public host name."
            )
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None and not address.is_global:
            raise InvalidWebhookUrl(
                f"webhook host {host} is not a public address", hint="Use a public host."
            )
    return url


def get_webhook(session: Session, provider_id: int) -> WebhookView:
    endpoint = _scope(session, provider_id).webhook_endpoint()
    if endpoint is None:
        raise WebhookNotConfigured(
            "you have not set a webhook endpoint yet",
            hint='PUT /v1/provider/webhook with {"url": "https://..."}.',
        )
    return _webhook_view(endpoint)


def put_webhook(
    session: Session,
    provider_id: int,
    url: str,
    *,
    settings: Settings,
    cipher: FieldCipher,
    now: datetime | None = None,
) -> WebhookView:
    """Set the endpoint URL. The first time, a signing secret is made and shown once;
    changing the URL later keeps the secret (rotate it with `rotate_secret`)."""
    checked = check_webhook_url(url, settings)
    scope = _scope(session, provider_id)
    moment = now or utcnow()
    endpoint = scope.webhook_endpoint()
    if endpoint is not None:
        endpoint.url = checked
        endpoint.updated_at = moment
        session.flush()
        return _webhook_view(endpoint)
    secret = new_signing_secret()
    sealed = ProviderSealer(cipher, provider_id).seal(secret, _ENDPOINTS, "secret")
    assert sealed is not None
    endpoint = WebhookEndpoint(
        provider_id=provider_id, url=checked, secret=sealed, created_at=moment, updated_at=moment
    )
    scope.add(endpoint)
    return _webhook_view(endpoint, secret=secret)


def rotate_secret(
    session: Session,
    provider_id: int,
    *,
    cipher: FieldCipher,
    grace: timedelta = DEFAULT_ROTATION_GRACE,
    now: datetime | None = None,
) -> WebhookView:
    """A new secret (shown once); the current one keeps signing beside it for `grace`.

    Rotating again within a grace period drops the oldest secret at once: at most two secrets
    ever sign, the newest and the one it replaced.
    """
    scope = _scope(session, provider_id)
    endpoint = scope.webhook_endpoint()
    if endpoint is None:
        raise WebhookNotConfigured(
            "there is no webhook secret to rotate: no endpoint is set",
            hint='PUT /v1/provider/webhook with {"url": "https://..."} first.',
        )
    moment = now or utcnow()
    sealer = ProviderSealer(cipher, provider_id)
    current = sealer.open(endpoint.secret, _ENDPOINTS, "secret")
    secret = new_signing_secret()
    endpoint.previous_secret = (
        sealer.seal(current, _ENDPOINTS, "previous_secret") if grace > timedelta(0) else None
    )
    endpoint.previous_secret_expires_at = moment + grace if grace > timedelta(0) else None
    sealed = sealer.seal(secret, _ENDPOINTS, "secret")
    assert sealed is not None
    endpoint.secret = sealed
    endpoint.updated_at = moment
    session.flush()
    return _webhook_view(endpoint, secret=secret)


def _webhook_view(endpoint: WebhookEndpoint, *, secret: str | None = None) -> WebhookView:
    return WebhookView(
        url=endpoint.url,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
        previous_secret_expires_at=endpoint.previous_secret_expires_at,
        secret=secret,
    )


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
    work: the event exists if and only if that work commits. A `providers.deliver` task is
    queued after the commit through `dispatcher` (default: the one the request's session
    carries, see `SESSION_DISPATCHER`); without one, the beat sweep sends it within seconds.
    """
    if not _EVENT_TYPE.match(event_type) or len(event_type) > 64:
        raise ValueError(f"event type {event_type!r} must look like 'credit_request.created'")
    scope = _scope(session, provider_id)
    moment = now or utcnow()
    delivery = scope.add_delivery(
        WebhookDelivery(
            event_id=f"evt_{uuid.uuid4().hex}",
            provider_id=provider_id,
            event_type=event_type,
            payload=dict(payload),
            status="pending",
            attempt_count=0,
            armed_at_attempt=0,
            next_attempt_at=moment,
            created_at=moment,
        )
    )
    _queue_after_commit(session, delivery.id, dispatcher)
    return delivery.id


def _queue_after_commit(session: Session, delivery_id: int, dispatcher: Dispatcher | None) -> None:
    chosen = dispatcher or session.info.get(SESSION_DISPATCHER)
    if chosen is not None:
        dispatch_after_commit(session, delivery_id, chosen)


def list_deliveries(
    session: Session,
    provider_id: int,
    *,
    before_id: int | None,
    limit: int,
    status: str | None = None,
) -> Sequence[WebhookDelivery]:
    return _scope(session, provider_id).deliveries(before_id=before_id, limit=limit, status=status)


def get_delivery(
    session: Session, provider_id: int, delivery_id: int
) -> tuple[WebhookDelivery, Sequence[WebhookAttempt]]:
    scope = _scope(session, provider_id)
    delivery = scope.delivery(delivery_id)
    if delivery is None:
        raise _delivery_not_found(delivery_id)
    return delivery, scope.attempts(delivery_id)


def redeliver(
    session: Session,
    provider_id: int,
    delivery_id: int,
    *,
    now: datetime | None = None,
    dispatcher: Dispatcher | None = None,
) -> WebhookDelivery:
    """Send a delivery again now, with a fresh retry schedule (whatever its status)."""
    scope = _scope(session, provider_id)
    moment = now or utcnow()
    if scope.delivery(delivery_id) is None:
        raise _delivery_not_found(delivery_id)
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


def _delivery_not_found(delivery_id: int) -> DeliveryNotFound:
    return DeliveryNotFound(
        f"you have no webhook delivery {delivery_id}",
        hint="List yours with GET /v1/provider/webhook/deliveries.",
    )
