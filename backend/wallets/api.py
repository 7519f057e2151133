"""HTTP API of a wallet's own data: `/v1/me/...`, for its SIWE session only.

Every route takes the wallet from the session (`CurrentWallet`), never from the path or body,
and the repositories filter by it: another wallet's deliveries are 404, its alerts and loans
never appear. The webhook routes are the providers' (same rules, signing and delivery log),
served by the shared subscription service for a `Subscriber.wallet`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from backend.auth.deps import CurrentWallet
from backend.auth.exceptions import WrongPrincipal
from backend.credit.api import Reader
from backend.db import SessionDep
from backend.exceptions import Unauthorized, error_responses
from backend.kit.columns import utcnow
from backend.providers.deps import Cipher, WebhookQueueingSession, app_settings
from backend.providers.exceptions import (
    DeliveryInFlight,
    DeliveryNotFound,
    InvalidWebhookUrl,
    WebhookNotConfigured,
)
from backend.providers.schemas import (
    DeliveryDetailOut,
    DeliveryOut,
    DeliveryPage,
    RotateSecretIn,
    WebhookIn,
    WebhookOut,
)
from backend.providers.webhooks import subscriptions
from backend.providers.webhooks.http import (
    DeliveriesBefore,
    DeliveriesLimit,
    DeliveryId,
    DeliveryStatus,
    delivery_detail,
    delivery_out,
    delivery_page,
)
from backend.providers.webhooks.subscribers import Subscriber
from backend.risk import service as risk
from backend.risk.cursors import alert_cursor, loan_cursor, parse_alert_cursor, parse_loan_cursor
from backend.risk.exceptions import InvalidCursor
from backend.risk.schemas import (
    AlertOut,
    AlertPage,
    ExposureOut,
    LoanHealthOut,
    LoanOut,
    LoanPage,
    RiskOut,
)
from backend.wallets import service

router = APIRouter(prefix="/v1/me", tags=["wallet"])

After = Annotated[
    str | None, Query(max_length=200, description="`next_after` of the previous page.")
]
_AUTH = (Unauthorized, WrongPrincipal)


def _me(wallet: CurrentWallet) -> Subscriber:
    return Subscriber.wallet(wallet.id)


# Webhook ---------------------------------------------------------------------------------------


@router.get(
    "/webhook",
    response_model=WebhookOut,
    response_model_exclude_none=True,
    summary="Your webhook endpoint",
    responses=error_responses(*_AUTH, WebhookNotConfigured),
)
def get_webhook(wallet: CurrentWallet, session: SessionDep) -> Any:
    return subscriptions.get_webhook(session, _me(wallet))


@router.put(
    "/webhook",
    response_model=WebhookOut,
    summary="Set your webhook endpoint",
    responses=error_responses(*_AUTH, InvalidWebhookUrl, validation=True),
)
def put_webhook(
    body: WebhookIn, request: Request, wallet: CurrentWallet, session: SessionDep, cipher: Cipher
) -> Any:
    """Set the URL your events (`risk.alert`) are POSTed to. The first time, the answer holds
    the signing secret (`whsec_...`), shown this once; later changes of URL keep it."""
    return subscriptions.put_webhook(
        session, _me(wallet), body.url, settings=app_settings(request), cipher=cipher
    )


@router.post(
    "/webhook/rotate-secret",
    response_model=WebhookOut,
    summary="Rotate your webhook signing secret",
    responses=error_responses(*_AUTH, WebhookNotConfigured, validation=True),
)
def rotate_secret(
    wallet: CurrentWallet, session: SessionDep, cipher: Cipher, body: RotateSecretIn | None = None
) -> Any:
    """A new secret, shown once; the previous one keeps signing beside it for `grace_seconds`."""
    grace = timedelta(seconds=(body or RotateSecretIn()).grace_seconds)
    return subscriptions.rotate_secret(session, _me(wallet), cipher=cipher, grace=grace)


@router.get(
    "/webhook/deliveries",
    response_model=DeliveryPage,
    summary="Your webhook deliveries",
    responses=error_responses(*_AUTH, validation=True),
)
def list_deliveries(
    wallet: CurrentWallet,
    session: SessionDep,
    before: DeliveriesBefore = None,
    limit: DeliveriesLimit = 50,
    status: DeliveryStatus = None,
) -> DeliveryPage:
    rows = subscriptions.list_deliveries(
        session, _me(wallet), before_id=before, limit=limit, status=status
    )
    return delivery_page(rows, limit)


@router.get(
    "/webhook/deliveries/{delivery_id}",
    response_model=DeliveryDetailOut,
    summary="One webhook delivery and its attempts",
    responses=error_responses(*_AUTH, DeliveryNotFound, validation=True),
)
def get_delivery(delivery_id: DeliveryId, wallet: CurrentWallet, session: SessionDep) -> Any:
    return delivery_detail(*subscriptions.get_delivery(session, _me(wallet), delivery_id))


@router.post(
    "/webhook/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    status_code=202,
    summary="Send a webhook delivery again",
    responses=error_responses(*_AUTH, DeliveryNotFound, DeliveryInFlight, validation=True),
)
def redeliver(
    delivery_id: DeliveryId, wallet: CurrentWallet, session: WebhookQueueingSession
) -> Any:
    """Queue the delivery for an attempt now, with a fresh retry schedule."""
    return delivery_out(subscriptions.redeliver(session, _me(wallet), delivery_id))


# Risk, loans, alerts ---------------------------------------------------------------------------


@router.get(
    "/risk",
    response_model=RiskOut,
    summary="Your credit score, exposure and loans' health",
    responses=error_responses(*_AUTH),
)
def get_risk(wallet: CurrentWallet, session: SessionDep, reader: Reader) -> RiskOut:
    """The 300-850 score and reason codes your next credit request is priced with, your open
    debt per chain and asset, and the health factor of each of your loans."""
    summary = service.risk_summary(session, wallet.id, reader=reader, now=utcnow())
    profile = summary.profile
    return RiskOut(
        wallet=summary.wallet,
        score=profile.score,
        reasons=list(profile.reasons),
        loans=profile.loans,
        defaults=profile.defaults,
        outstanding=str(profile.outstanding),
        exposure=[ExposureOut.of(e) for e in summary.exposure],
        health=[
            LoanHealthOut(
                chain_id=view.chain_id,
                loan_id=str(view.loan.loan_id),
                status=view.loan.status,
                health_factor=None if view.health_factor is None else str(view.health_factor),
            )
            for view in summary.loans
        ],
    )


@router.get(
    "/loans",
    response_model=LoanPage,
    summary="Your loans (as borrower)",
    responses=error_responses(*_AUTH, InvalidCursor, validation=True),
)
def list_loans(
    wallet: CurrentWallet,
    session: SessionDep,
    after: After = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> LoanPage:
    """Your loans on every watched chain, in (chain id, loan id) order."""
    views = risk.wallet_loans(session, wallet.id, after=parse_loan_cursor(after), limit=limit)
    last = views[-1] if len(views) == limit else None
    return LoanPage(
        items=[LoanOut.of(view) for view in views],
        next_after=loan_cursor((last.chain_id, last.loan.loan_id)) if last else None,
    )


@router.get(
    "/alerts",
    response_model=AlertPage,
    summary="Early-warning alerts on your loans",
    responses=error_responses(*_AUTH, InvalidCursor, validation=True),
)
def list_alerts(
    wallet: CurrentWallet,
    session: SessionDep,
    after: After = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AlertPage:
    """Each time one of your loans' health factor fell below a threshold, in chain order.
    Listed from the chain head; the webhook is sent once the block is final."""
    views = risk.wallet_alerts(session, wallet.id, after=parse_alert_cursor(after), limit=limit)
    return AlertPage(
        items=[AlertOut.of(view) for view in views],
        next_after=alert_cursor(views[-1].position) if len(views) == limit else None,
    )
