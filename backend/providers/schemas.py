"""Request and response shapes of the provider API (never the table models)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from eth_utils import is_checksum_address, to_checksum_address
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from backend.providers.rate_cards import RateCard

Email = Annotated[
    str,
    Field(
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="A contact e-mail address, e.g. lending@example.com.",
    ),
]
Phone = Annotated[
    str,
    Field(
        pattern=r"^\+[1-9][0-9]{6,14}$",
        description="E.164: + and country code, digits only, e.g. +442071234567.",
    ),
]


def _eip55(value: str) -> str:
    """Mixed case must be a valid EIP-55 checksum (it catches typos); one case is taken as is."""
    digits = value[2:]
    if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(value):
        raise ValueError(
            f"{value} fails its EIP-55 checksum (a typo?); its checksummed form would be "
            f"{to_checksum_address(value)} - check the address you meant"
        )
    if int(value, 16) == 0:
        raise ValueError("the zero address cannot receive loans; give the lender's own address")
    return value


PayoutAddress = Annotated[
    str,
    Field(
        pattern=r"^0x[0-9a-fA-F]{40}$",
        description="The lender's payout address (EIP-55), the `provider` of its loans' terms.",
    ),
    AfterValidator(_eip55),
]


class ProfilePatch(BaseModel):
    """Fields to change; leave one out to keep it, send null to clear it."""

    model_config = ConfigDict(extra="forbid")

    display_name: Annotated[str, Field(min_length=1, max_length=120)] | None = None
    contact_email: Email | None = None
    contact_phone: Phone | None = None
    payout_address: PayoutAddress | None = None


class ProfileOut(BaseModel):
    provider_id: int
    name: str
    kind: str
    status: str
    display_name: str | None
    contact_email: str | None
    contact_phone: str | None
    updated_at: datetime | None
    payout_address: str | None = None


class RateCardOut(BaseModel):
    """The stored card; `version` increases with every PUT."""

    version: int
    updated_at: datetime
    card: RateCard


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, description="Where events are POSTed.")


class RotateSecretIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: int = Field(
        default=86_400,
        ge=0,
        le=7 * 86_400,
        description="How long the previous secret keeps signing beside the new one.",
    )


class WebhookOut(BaseModel):
    """The endpoint. `secret` appears only when one was just created: store it now."""

    url: str
    created_at: datetime
    updated_at: datetime
    previous_secret_expires_at: datetime | None
    secret: str | None = None


class AttemptOut(BaseModel):
    attempt_number: int
    url: str | None
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    response_excerpt: str | None


class DeliveryOut(BaseModel):
    id: int
    event_id: str
    event_type: str
    status: Literal["pending", "delivered", "failed"]
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, object]


class DeliveryDetailOut(DeliveryOut):
    attempts: list[AttemptOut]


class DeliveryPage(BaseModel):
    """Newest first; pass `next_before` as `before` for the next page (null: no more)."""

    items: list[DeliveryOut]
    next_before: int | None
