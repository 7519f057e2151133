"""Risk effect rows (head phase), each keyed by the log that caused it, and the alert ledger.

Every effect table carries the log key (chain_id, block_hash, log_index) as a foreign key to
`watcher_logs` with ON DELETE CASCADE: a reorg that orphans a log removes its effects and the
alerts it raised. Amounts are uint256 in the token's smallest unit, kept as decimal strings
(they do not fit BIGINT and SQLite has no exact wide numeric); aggregates fold them in Python.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKeyConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import Base
from backend.kit.columns import UTCDateTime

HASH = String(66)
ADDRESS = String(42)
UINT = String(78)


def log_fk(table: str) -> ForeignKeyConstraint:
    """The cascading foreign key from an effect table to the log that caused its rows."""
    return ForeignKeyConstraint(
        ["chain_id", "block_hash", "log_index"],
        ["watcher_logs.chain_id", "watcher_logs.block_hash", "watcher_logs.log_index"],
        ondelete="CASCADE",
        name=f"fk_{table}_log",
    )


class _LogKey:
    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    block_hash: Mapped[str] = mapped_column(HASH, primary_key=True)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    block_number: Mapped[int] = mapped_column(BigInteger)


class RiskLoanEffect(_LogKey, Base):
    """One lifecycle or collateral event of a loan (kind: opened, repaid, defaulted, closed,
    deposited, withdrawn, liquidated). `amount` is the event's amount (principal, repayment,
    deposit, withdrawal or seized collateral); `after` the outstanding debt after it (loan
    events) and `repaid` the liquidation's debt repaid."""

    __tablename__ = "risk_loan_effects"
    __table_args__ = (
        log_fk("risk_loan_effects"),
        # a loan's history, a wallet's loans, a step's window: each an index range, not a scan
        Index("ix_risk_loan_effects_loan", "chain_id", "loan_id"),
        Index("ix_risk_loan_effects_borrower", "borrower", "chain_id"),
        Index("ix_risk_loan_effects_position", "chain_id", "block_number", "log_index"),
    )

    loan_id: Mapped[str] = mapped_column(UINT)
    kind: Mapped[str] = mapped_column(String(16))
    borrower: Mapped[str | None] = mapped_column(ADDRESS)
    provider: Mapped[str | None] = mapped_column(ADDRESS)
    asset: Mapped[str | None] = mapped_column(ADDRESS)
    collateral_asset: Mapped[str | None] = mapped_column(ADDRESS)
    amount: Mapped[str] = mapped_column(UINT)
    after: Mapped[str | None] = mapped_column(UINT)


class RiskPriceEffect(_LogKey, Base):
    """A price feed's `AnswerUpdated`: the latest one per feed is the price."""

    __tablename__ = "risk_price_effects"
    __table_args__ = (
        log_fk("risk_price_effects"),
        Index("ix_risk_price_effects_feed", "chain_id", "feed", "block_number", "log_index"),
        Index("ix_risk_price_effects_position", "chain_id", "block_number", "log_index"),
    )

    feed: Mapped[str] = mapped_column(ADDRESS)
    round_id: Mapped[int] = mapped_column(BigInteger)
    answer: Mapped[str] = mapped_column(String(80))  # int256, may be negative
    updated_at: Mapped[int] = mapped_column(BigInteger)


class RiskAssetConfigEffect(_LogKey, Base):
    """CollateralManager's `AssetConfigured`: feed, threshold and decimals of an asset."""

    __tablename__ = "risk_asset_configs"
    __table_args__ = (
        log_fk("risk_asset_configs"),
        Index("ix_risk_asset_configs_asset", "chain_id", "asset", "block_number", "log_index"),
        Index("ix_risk_asset_configs_position", "chain_id", "block_number", "log_index"),
    )

    asset: Mapped[str] = mapped_column(ADDRESS)
    feed: Mapped[str] = mapped_column(ADDRESS)
    threshold_bps: Mapped[int] = mapped_column(Integer)
    bonus_bps: Mapped[int] = mapped_column(Integer)
    token_decimals: Mapped[int] = mapped_column(Integer)
    feed_decimals: Mapped[int] = mapped_column(Integer)


class RiskAlert(_LogKey, Base):
    """A loan's health factor crossed below `threshold` because of this log (one per crossing)."""

    __tablename__ = "risk_alerts"
    __table_args__ = (log_fk("risk_alerts"),)

    loan_id: Mapped[str] = mapped_column(UINT, primary_key=True)
    threshold: Mapped[str] = mapped_column(String(16), primary_key=True)
    borrower: Mapped[str] = mapped_column(ADDRESS)
    provider: Mapped[str] = mapped_column(ADDRESS)
    health_factor: Mapped[str] = mapped_column(String(40))
    # The collateral's price after this log, in the feed's quote currency (a decimal string);
    # None only for alerts raised before the column existed (a rebuild fills it in).
    price: Mapped[str | None] = mapped_column(String(80))


class AlertRecipient(StrEnum):
    PROVIDER = "provider"  # the loan's lender (its payout address is the loan's `provider`)
    WALLET = "wallet"  # the loan's borrower


class RiskAlertDelivery(Base):
    """Inbox of alerts handed to webhooks: insert-if-absent makes sending exactly once.

    One row per (alert, recipient): the lender and the borrower wallet are each offered an
    alert once, when its log is final. `delivery_id` is None when that recipient could not be
    sent to then (no such provider; a wallet without a webhook endpoint).

    Deliberately not an effect table (no cascade, untouched by a rebuild): a rebuild replays
    the final-phase delivery projection, and this ledger is what stops a second webhook.
    """

    __tablename__ = "risk_alert_deliveries"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    block_hash: Mapped[str] = mapped_column(HASH, primary_key=True)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    loan_id: Mapped[str] = mapped_column(UINT, primary_key=True)
    threshold: Mapped[str] = mapped_column(String(16), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(8), primary_key=True)
    provider_id: Mapped[int | None] = mapped_column(BigInteger)
    wallet: Mapped[str | None] = mapped_column(ADDRESS)
    delivery_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
