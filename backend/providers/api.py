"""HTTP API of providers: `/v1/provider/...`, for a lender's own API key only.

Every route takes the caller's provider id from its key (`CurrentProvider`), never from the
path or body, and the repository filters every query by it: another lender's rows are 404.
Reading needs any key of the provider; changing configuration or redelivering needs
`profile:write`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from backend.auth.deps import CurrentProvider, Principal, provider_with_scope
from backend.auth.exceptions import MissingScope, WrongPrincipal
from backend.auth.scopes import PROFILE_WRITE
from backend.db import SessionDep
from backend.exceptions import Unauthorized, error_responses
from backend.providers import service
from backend.providers.deps import Cipher, WebhookQueueingSession, app_settings
from backend.providers.exceptions import (
    DeliveryInFlight,
    DeliveryNotFound,
    InvalidWebhookUrl,
    ProviderNotFound,
    RateCardNotFound,
    WebhookNotConfigured,
)
from backend.providers.rate_cards import RateCard
from backend.providers.schemas import (
    DeliveryDetailOut,
    DeliveryOut,
    DeliveryPage,
    ProfileOut,
    ProfilePatch,
    RateCardOut,
    RotateSecretIn,
    WebhookIn,
    WebhookOut,
)
from backend.providers.webhooks.http import (
    DeliveriesBefore,
    DeliveriesLimit,
    DeliveryId,
    DeliveryStatus,
    delivery_detail,
    delivery_out,
    delivery_page,
)

router = APIRouter(prefix="/v1/provider", tags=["provider"])


Writer = Annotated[Principal, Depends(provider_with_scope(PROFILE_WRITE))]
_AUTH = (Unauthorized, WrongPrincipal, ProviderNotFound)


@router.get(
    "/profile",
    response_model=ProfileOut,
    summary="Your profile",
    responses=error_responses(*_AUTH),
)
def get_profile(provider: CurrentProvider, session: SessionDep, cipher: Cipher) -> Any:
    """Your display name and contact details (stored encrypted; shown only to you)."""
    return service.get_profile(session, provider.provider_id, cipher=cipher)


@router.patch(
    "/profile",
    response_model=ProfileOut,
    summary="Change your profile",
    responses=error_responses(*_AUTH, MissingScope, validation=True),
)
def patch_profile(body: ProfilePatch, provider: Writer, session: SessionDep, cipher: Cipher) -> Any:
    """Change the fields you send; send null to clear one."""
    changes = body.model_dump(include=body.model_fields_set)
    return service.update_profile(session, provider.provider_id, changes, cipher=cipher)


@router.get(
    "/rate-card",
    response_model=RateCardOut,
    summary="Your rate card",
    responses=error_responses(*_AUTH, RateCardNotFound),
)
def get_rate_card(provider: CurrentProvider, session: SessionDep) -> Any:
    return service.get_rate_card(session, provider.provider_id)


@router.put(
    "/rate-card",
    response_model=RateCardOut,
    summary="Set your rate card",
    responses=error_responses(*_AUTH, MissingScope, validation=True),
)
def put_rate_card(body: RateCard, provider: Writer, session: SessionDep) -> Any:
    """Replace your rate card whole. Amounts are integers in the asset's smallest unit; APRs
    and LTVs are decimal strings ("0.1250" = 12.5 %); APR bands must tile scores from your
    lowest band up to 850 with no gap or overlap."""
    return service.put_rate_card(session, provider.provider_id, body)


@router.get(
    "/webhook",
    response_model=WebhookOut,
    response_model_exclude_none=True,
    summary="Your webhook endpoint",
    responses=error_responses(*_AUTH, WebhookNotConfigured),
)
def get_webhook(provider: CurrentProvider, session: SessionDep) -> Any:
    return service.get_webhook(session, provider.provider_id)


@router.put(
    "/webhook",
    response_model=WebhookOut,
    summary="Set your webhook endpoint",
    responses=error_responses(*_AUTH, MissingScope, InvalidWebhookUrl, validation=True),
)
def put_webhook(
    body: WebhookIn, request: Request, provider: Writer, session: SessionDep, cipher: Cipher
) -> Any:
    """Set the URL events are POSTed to. The first time, the answer holds the signing secret
    (`whsec_...`), shown this once; later changes of URL keep it."""
    return service.put_webhook(
        session, provider.provider_id, body.url, settings=app_settings(request), cipher=cipher
    )


@router.post(
    "/webhook/rotate-secret",
    response_model=WebhookOut,
    summary="Rotate your webhook signing secret",
    responses=error_responses(*_AUTH, MissingScope, WebhookNotConfigured, validation=True),
)
def rotate_secret(
    provider: Writer, session: SessionDep, cipher: Cipher, body: RotateSecretIn | None = None
) -> Any:
    """A new secret, shown once. For `grace_seconds` (default a day) every event carries two
    `v1=` signatures, one per secret, so you can switch your verifier without missing any."""
    grace = timedelta(seconds=(body or RotateSecretIn()).grace_seconds)
    return service.rotate_secret(session, provider.provider_id, cipher=cipher, grace=grace)


@router.get(
    "/webhook/deliveries",
    response_model=DeliveryPage,
    summary="Your webhook deliveries",
    responses=error_responses(*_AUTH, validation=True),
)
def list_deliveries(
    provider: CurrentProvider,
    session: SessionDep,
    before: DeliveriesBefore = None,
    limit: DeliveriesLimit = 50,
    status: DeliveryStatus = None,
) -> DeliveryPage:
    rows = service.list_deliveries(
        session, provider.provider_id, before_id=before, limit=limit, status=status
    )
    return delivery_page(rows, limit)


@router.get(
    "/webhook/deliveries/{delivery_id}",
    response_model=DeliveryDetailOut,
    summary="One webhook delivery and its attempts",
    responses=error_responses(*_AUTH, DeliveryNotFound, validation=True),
)
def get_delivery(delivery_id: DeliveryId, provider: CurrentProvider, session: SessionDep) -> Any:
    return delivery_detail(*service.get_delivery(session, provider.provider_id, delivery_id))


@router.post(
    "/webhook/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    status_code=202,
    summary="Send a webhook delivery again",
    responses=error_responses(
        *_AUTH, MissingScope, DeliveryNotFound, DeliveryInFlight, validation=True
    ),
)
def redeliver(delivery_id: DeliveryId, provider: Writer, session: WebhookQueueingSession) -> Any:
    """Queue the delivery for an attempt now, with a fresh retry schedule."""
    return delivery_out(service.redeliver(session, provider.provider_id, delivery_id))
