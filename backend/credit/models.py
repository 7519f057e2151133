"""Tables of the credit domain: requests, quotes, per-provider outcomes, breakers, KYC, pools.

Amounts are decimal strings of smallest units (a uint256 does not fit a BIGINT); the figures of
a quote are kept as the JSON document the borrower was shown (the same one that goes into the
quote_set receipt), so what was shown and what is stored cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.credit.loan_models import CreditLoan as CreditLoan  # registers credit_loans
from backend.db import Base
from backend.kit.columns import UTCDateTime, utcnow


class Outcome(StrEnum):
    """What one provider did with one credit request."""

    QUOTED = "quoted"
    TIMED_OUT = "timed_out"
    DECLINED = "declined"
    ERROR = "error"
    CIRCUIT_OPEN = "circuit_open"
    INELIGIBLE = "ineligible"


_OUTCOMES_SQL = ", ".join(f"'{outcome.value}'" for outcome in Outcome)


class WalletKyc(Base):
    """The KYC tier a wallet has reached (no row: tier 0)."""

    __tablename__ = "credit_wallet_kyc"
    __table_args__ = (CheckConstraint("tier >= 0 AND tier <= 3", name="tier"),)

    wallet: Mapped[str] = mapped_column(String(42), primary_key=True)
    tier: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DefiPool(Base):
    """The lending pool a DeFi provider stands for: which chain, which contract, which asset."""

    __tablename__ = "credit_defi_pools"

    provider_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True
    )
    chain_id: Mapped[int] = mapped_column(BigInteger)
    pool_address: Mapped[str] = mapped_column(String(42))
    asset: Mapped[str] = mapped_column(String(16))


class CreditRequest(Base):
    """One borrower's request, its risk profile and the quote_set receipt it produced."""

    __tablename__ = "credit_requests"
    __table_args__ = (Index("ix_credit_requests_wallet", "wallet", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    wallet: Mapped[str] = mapped_column(String(42))
    asset: Mapped[str] = mapped_column(String(16))
    chain_id: Mapped[int | None] = mapped_column(BigInteger)
    amount: Mapped[str] = mapped_column(String(78))
    term_days: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(String(200))
    collateral: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    constraints: Mapped[dict[str, Any]] = mapped_column(JSON)
    risk_score: Mapped[int] = mapped_column(Integer)
    risk_reasons: Mapped[list[str]] = mapped_column(JSON)
    quote_set_receipt_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CreditQuote(Base):
    """One normalised quote: `document` is the QuoteV1 (as in the receipt), `figures` the
    figures QuoteV1 has no field for (Reg Z APR, health factor, rateBps), `typed_data` the
    EIP-712 acceptance the borrower signs."""

    __tablename__ = "credit_quotes"
    __table_args__ = (
        Index("ix_credit_quotes_request", "request_id"),
        Index("ix_credit_quotes_provider", "provider_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("credit_requests.id", ondelete="CASCADE")
    )
    provider_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("providers.id"))
    source: Mapped[str] = mapped_column(String(16))
    chain_id: Mapped[int] = mapped_column(BigInteger)
    rank: Mapped[int | None] = mapped_column(Integer)
    excluded_reason: Mapped[str | None] = mapped_column(Text)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    typed_data: Mapped[dict[str, Any]] = mapped_column(JSON)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ProviderOutcome(Base):
    """What each considered provider did with a request: the "who did not quote, and why"."""

    __tablename__ = "credit_provider_outcomes"
    __table_args__ = (
        CheckConstraint(f"outcome IN ({_OUTCOMES_SQL})", name="outcome"),
        Index("ix_credit_provider_outcomes_provider", "provider_id", "created_at"),
    )

    request_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("credit_requests.id", ondelete="CASCADE"), primary_key=True
    )
    provider_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("providers.id"), primary_key=True
    )
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CircuitBreaker(Base):
    """A provider's breaker, in the database so every API replica sees the same state.

    Closed: `opened_at` is null. Open: `opened_at` is set and the cool-down has not passed.
    Half-open: the cool-down has passed; the replica whose conditional UPDATE sets
    `probe_started_at` sends the one probe, everyone else keeps skipping the provider.
    """

    __tablename__ = "credit_circuit_breakers"

    provider_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True
    )
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    probe_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ProviderAnswer(Base):
    """A lender's slot for answering one request later (`POST /v1/provider/quotes`).

    Opened (`pending`) before the webhook is sent, so a lender that answers 202 and posts at
    once cannot beat its own slot; the POST turns it into `quote` or `decline` with a
    conditional UPDATE, so of two answers exactly one wins; the fan-out turns a slot nobody
    answered into `closed` when it stops waiting, and an inline answer into `inline`. No
    foreign key to credit_requests: that row is written after the fan-out.
    """

    __tablename__ = "credit_provider_answers"
    __table_args__ = (
        CheckConstraint("kind IN ('pending', 'quote', 'decline', 'inline', 'closed')", name="kind"),
    )

    request_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    provider_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    body: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
