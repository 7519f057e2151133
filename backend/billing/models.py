"""Billing tables: final-phase origination effects, block times, subscriptions, statements.

`billing_originations` is an effect table (keyed by its LoanOpened log, cascading), written
only once the block is final. Block times are cached per final block (they cannot change), so
months are assigned by block timestamp deterministically. Statements are one row per provider
and month; once `final` they are never recomputed and carry the id of their receipt.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import Base
from backend.kit.columns import BigIntPK, UTCDateTime
from backend.risk.models import ADDRESS, HASH, UINT, log_fk


class BillingOrigination(Base):
    """A loan opened on chain (final): who lent, which asset, how much."""

    __tablename__ = "billing_originations"
    __table_args__ = (log_fk("billing_originations"),)

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    block_hash: Mapped[str] = mapped_column(HASH, primary_key=True)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    block_number: Mapped[int] = mapped_column(BigInteger)
    loan_id: Mapped[str] = mapped_column(UINT)
    provider: Mapped[str] = mapped_column(ADDRESS)
    asset: Mapped[str] = mapped_column(ADDRESS)
    principal: Mapped[str] = mapped_column(UINT)


class BillingBlockTime(Base):
    """Timestamp of a final block (immutable, so a cache)."""

    __tablename__ = "billing_block_times"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    timestamp: Mapped[int] = mapped_column(BigInteger)


class BillingSubscription(Base):
    """Which plan a provider is on, and the asset its statements are in."""

    __tablename__ = "billing_subscriptions"

    provider_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True
    )
    plan: Mapped[str] = mapped_column(String(32))
    currency_chain_id: Mapped[int] = mapped_column(BigInteger)
    currency_address: Mapped[str] = mapped_column(ADDRESS)
    currency_symbol: Mapped[str] = mapped_column(String(16))
    currency_decimals: Mapped[int] = mapped_column(Integer)


class BillingStatement(Base):
    """A provider's statement of one month; `status` open until all its events are final."""

    __tablename__ = "billing_statements"
    __table_args__ = (UniqueConstraint("provider_id", "period_start"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    provider_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("providers.id", ondelete="CASCADE")
    )
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(8))
    plan: Mapped[str] = mapped_column(String(32))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    total: Mapped[str] = mapped_column(UINT)
    receipt_id: Mapped[str | None] = mapped_column(String(36))
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())
