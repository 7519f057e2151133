"""What every subscriber's webhook routes share (`/v1/provider/webhook/...`, `/v1/me/webhook/...`):
the path and query parameters and the shapes of deliveries, so lenders and wallets read one
contract and the two routers cannot drift apart."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import Path, Query

from backend.kit.columns import DB_INT_MAX
from backend.providers.models import WebhookAttempt, WebhookDelivery
from backend.providers.schemas import AttemptOut, DeliveryDetailOut, DeliveryOut, DeliveryPage

DeliveryId = Annotated[int, Path(ge=1, le=DB_INT_MAX, description="The delivery's id.")]
DeliveriesBefore = Annotated[
    int | None, Query(ge=1, le=DB_INT_MAX, description="Page below this delivery id.")
]
DeliveriesLimit = Annotated[int, Query(ge=1, le=200)]
DeliveryStatus = Annotated[str | None, Query(pattern="^(pending|delivered|failed)$")]


def delivery_out(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut.model_validate(row, from_attributes=True)


def delivery_detail(row: WebhookDelivery, attempts: Sequence[WebhookAttempt]) -> DeliveryDetailOut:
    return DeliveryDetailOut(
        **delivery_out(row).model_dump(),
        attempts=[AttemptOut.model_validate(a, from_attributes=True) for a in attempts],
    )


def delivery_page(rows: Sequence[WebhookDelivery], limit: int) -> DeliveryPage:
    """A page of deliveries, newest first; `next_before` is set when the page is full."""
    next_before = rows[-1].id if len(rows) == limit else None
    return DeliveryPage(items=[delivery_out(row) for row in rows], next_before=next_before)
