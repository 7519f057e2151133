"""Shapes of the wallet API. The webhook shapes are the providers' own (one contract for every
subscriber); the risk shapes live in `backend.risk.schemas`."""

from __future__ import annotations

from collections.abc import Sequence

from backend.providers.models import WebhookAttempt, WebhookDelivery
from backend.providers.schemas import AttemptOut, DeliveryDetailOut, DeliveryOut


def delivery_out(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut.model_validate(row, from_attributes=True)


def delivery_detail(row: WebhookDelivery, attempts: Sequence[WebhookAttempt]) -> DeliveryDetailOut:
    return DeliveryDetailOut(
        **delivery_out(row).model_dump(),
        attempts=[AttemptOut.model_validate(a, from_attributes=True) for a in attempts],
    )
