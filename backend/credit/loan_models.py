"""The loans opened by accepted quotes (table `credit_loans`).

One row per loan, written in the same transaction as its acceptance receipt and its `loan.opened`
webhook, after the `openLoan` transaction was mined. `quote_id` and `request_id` are unique: a
quote opens at most one loan, and a credit request ends in at most one loan (its sibling quotes
carry the same acceptance nonce, so CreditAggregator would refuse them anyway). The on-chain id
is a uint256, kept as a decimal string like every amount of the credit domain.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import Base
from backend.kit.columns import UTCDateTime, utcnow


class LoanStatus(StrEnum):
    """Where the loan stands as far as the API knows (the watcher refines it from events)."""

    OPEN = "open"
    REPAID = "repaid"
    DEFAULTED = "defaulted"
    CLOSED = "closed"


_STATUSES_SQL = ", ".join(f"'{status.value}'" for status in LoanStatus)


class CreditLoan(Base):
    """A loan CreditAggregator opened for an accepted quote, and where that happened."""

    __tablename__ = "credit_loans"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES_SQL})", name="status"),
        UniqueConstraint("quote_id"),
        UniqueConstraint("request_id"),
        UniqueConstraint("chain_id", "aggregator", "loan_id"),
        Index("ix_credit_loans_wallet", "wallet", "created_at"),
        Index("ix_credit_loans_provider", "provider_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    quote_id: Mapped[str] = mapped_column(String(36), ForeignKey("credit_quotes.id"))
    request_id: Mapped[str] = mapped_column(String(36), ForeignKey("credit_requests.id"))
    wallet: Mapped[str] = mapped_column(String(42))
    provider_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("providers.id"))
    chain_id: Mapped[int] = mapped_column(BigInteger)
    aggregator: Mapped[str] = mapped_column(String(42))
    loan_id: Mapped[str] = mapped_column(String(78))
    tx_hash: Mapped[str] = mapped_column(String(66))
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    acceptance_digest: Mapped[str] = mapped_column(String(66))
    receipt_id: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16), default=LoanStatus.OPEN.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
