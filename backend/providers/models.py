"""Tables of the providers domain: identity, configuration, and the webhook outbox.

The `providers` table holds only identity (what API keys and tenants point at). Profile, rate
card and webhook endpoint are their own one-row-per-provider tables, so `providers` stays
minimal: a stable integer id (the tenant is `provider:<id>`), a unique name, the kind and a
status that can switch a provider off without deleting its history.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import Base
from backend.kit.columns import BigIntPK, UTCDateTime, utcnow


class ProviderKind(StrEnum):
    DEFI = "defi"  # a lending pool contract on a chain; rates read on-chain
    TRADITIONAL = "traditional"  # a lender with an HTTPS quote endpoint or a rate card


class ProviderStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # its keys stop working; nothing is deleted


_KINDS_SQL = ", ".join(f"'{kind.value}'" for kind in ProviderKind)
_STATUSES_SQL = ", ".join(f"'{status.value}'" for status in ProviderStatus)


class Provider(Base):
    """One lender. `tenant` is what receipts, quotes and loans are scoped by."""

    __tablename__ = "providers"
    __table_args__ = (
        CheckConstraint(f"kind IN ({_KINDS_SQL})", name="kind"),
        CheckConstraint(f"status IN ({_STATUSES_SQL})", name="status"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=ProviderStatus.ACTIVE.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def tenant(self) -> str:
        return f"provider:{self.id}"

    @property
    def is_active(self) -> bool:
        return self.status == ProviderStatus.ACTIVE.value


# Configuration of one provider -----------------------------------------------------------------
#
# Each of these tables is keyed by `provider_id` (one row per provider), so a query can only ever
# name one provider's row; the repository layer always filters by the caller's provider id.


class ProviderProfile(Base):
    """What a lender tells borrowers and us about itself.

    `contact_email` and `contact_phone` are personal data: they hold AES-GCM ciphertexts written
    through `backend.providers.pii` (bound to this table, column and provider id).
    """

    __tablename__ = "provider_profiles"

    provider_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True
    )
    display_name: Mapped[str | None] = mapped_column(String(120))
    contact_email: Mapped[str | None] = mapped_column(Text)
    contact_phone: Mapped[str | None] = mapped_column(Text)
    # Where a lender's loans pay out: the `provider` of the EIP-712 terms of its rate-card
    # quotes (lower-case hex; validated as EIP-55 on the way in). Not personal data.
    payout_address: Mapped[str | None] = mapped_column(String(42))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ProviderRateCard(Base):
    """A traditional lender's pricing rules when it has no quote endpoint of its own.

    The validated card is kept as one JSON document (Decimal values as strings, amounts as
    decimal strings of smallest units) rather than spread over rule tables: it is always read
    and replaced whole, and `version` tells a quote which card priced it.
    """

    __tablename__ = "provider_rate_cards"

    provider_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookEndpointColumns:
    """The columns every subscriber's webhook endpoint has (a lender's or a wallet's).

    Secrets are encrypted (`backend.providers.webhooks.secrets`), never hashed: we must produce
    HMACs with them. During a rotation the previous secret keeps signing, beside the new one,
    until `previous_secret_expires_at`. Each subscriber kind keeps its endpoints in its own
    table keyed by its own id, so one subscriber's row can only ever be named by that id.
    """

    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(Text)
    previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookEndpoint(WebhookEndpointColumns, Base):
    """Where a provider receives events, and the secrets that sign them."""

    __tablename__ = "provider_webhook_endpoints"

    provider_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True
    )


# Webhook outbox ---------------------------------------------------------------------------------


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt (or being attempted: see leased_until)
    DELIVERED = "delivered"  # the endpoint answered 2xx
    FAILED = "failed"  # the retry schedule is exhausted; only a manual redelivery resends it


_DELIVERY_STATUSES_SQL = ", ".join(f"'{status.value}'" for status in DeliveryStatus)
_ONE_SUBSCRIBER_SQL = "(provider_id IS NULL) <> (wallet IS NULL)"


class WebhookDelivery(Base):
    """One event for one subscriber: the outbox row written in the caller's transaction.

    The subscriber is a provider (`provider_id`) or a wallet (`wallet`, lower-case address),
    exactly one of the two (a check constraint): the schedule, signing and log are the same
    for both, only the endpoint table differs (`backend.providers.webhooks.subscribers`).

    `next_attempt_at` is the durable schedule: the `providers.deliver_due` sweep sends whatever
    is due, so nothing depends on a Celery message surviving. `leased_until` marks an attempt in
    flight; a worker that dies mid-attempt lets the lease lapse and the sweep takes it again.
    `armed_at_attempt` is `attempt_count` when the retry schedule last (re)started, so a manual
    redelivery gets a fresh schedule while `attempt_count` keeps counting every attempt.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(f"status IN ({_DELIVERY_STATUSES_SQL})", name="status"),
        CheckConstraint(_ONE_SUBSCRIBER_SQL, name="one_subscriber"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_provider", "provider_id", "id"),
        Index("ix_webhook_deliveries_wallet", "wallet", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    provider_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("providers.id", ondelete="CASCADE")
    )
    wallet: Mapped[str | None] = mapped_column(String(42))
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    armed_at_attempt: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookAttempt(Base):
    """The log of every POST we made (or could not make) for a delivery."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    provider_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("providers.id"))
    wallet: Mapped[str | None] = mapped_column(String(42))
    attempt_number: Mapped[int] = mapped_column(Integer)
    url: Mapped[str | None] = mapped_column(String(2048))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    response_excerpt: Mapped[str | None] = mapped_column(Text)


def _register_encrypted_columns() -> None:
    """Let `credagg keys rotate-data-key` re-encrypt contact details and webhook secrets."""
    from backend.kit.crypto_rotation import register_encrypted_column
    from backend.providers.pii import ENCRYPTED_COLUMNS

    for table, column in ENCRYPTED_COLUMNS:
        register_encrypted_column(table, column, id_column="provider_id")


_register_encrypted_columns()
