"""All SQL of billing: originations, block times, quotes served, subscriptions, statements."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.billing.models import (
    BillingBlockTime,
    BillingOrigination,
    BillingStatement,
    BillingSubscription,
)
from backend.credit.models import CreditQuote
from backend.watcher.models import WatcherCursor


class BillingRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def originations(self, provider_address: str) -> Sequence[BillingOrigination]:
        return self.session.scalars(
            select(BillingOrigination)
            .where(BillingOrigination.provider == provider_address.lower())
            .order_by(
                BillingOrigination.chain_id,
                BillingOrigination.block_number,
                BillingOrigination.log_index,
            )
        ).all()

    def all_originations(self, chain_id: int) -> list[tuple[object, ...]]:
        rows = self.session.execute(
            select(
                BillingOrigination.block_hash,
                BillingOrigination.log_index,
                BillingOrigination.loan_id,
                BillingOrigination.provider,
                BillingOrigination.principal,
            )
            .where(BillingOrigination.chain_id == chain_id)
            .order_by(BillingOrigination.block_number, BillingOrigination.log_index)
        )
        return [tuple(r) for r in rows]

    def block_time(self, chain_id: int, number: int) -> int | None:
        row = self.session.get(BillingBlockTime, (chain_id, number))
        return None if row is None else row.timestamp

    def add_block_time(self, chain_id: int, number: int, timestamp: int) -> None:
        self.session.add(BillingBlockTime(chain_id=chain_id, number=number, timestamp=timestamp))
        self.session.flush()

    def final_blocks(self) -> list[tuple[int, int]]:
        """(chain_id, final_number) of every watched chain."""
        rows = self.session.execute(select(WatcherCursor.chain_id, WatcherCursor.final_number))
        return [(int(r[0]), int(r[1])) for r in rows]

    def quotes_served(self, provider_id: int, start: datetime, end: datetime) -> int:
        count = self.session.scalar(
            select(func.count())
            .select_from(CreditQuote)
            .where(CreditQuote.provider_id == provider_id)
            .where(CreditQuote.excluded_reason.is_(None))
            .where(CreditQuote.created_at >= start, CreditQuote.created_at < end)
        )
        return int(count or 0)

    def subscription(self, provider_id: int) -> BillingSubscription | None:
        return self.session.get(BillingSubscription, provider_id)

    def subscriptions(self) -> Sequence[BillingSubscription]:
        return self.session.scalars(
            select(BillingSubscription).order_by(BillingSubscription.provider_id)
        ).all()

    def put_subscription(self, subscription: BillingSubscription) -> BillingSubscription:
        merged = self.session.merge(subscription)
        self.session.flush()
        return merged

    def statement(self, provider_id: int, start: datetime) -> BillingStatement | None:
        return self.session.scalar(
            select(BillingStatement)
            .where(BillingStatement.provider_id == provider_id)
            .where(BillingStatement.period_start == start)
            .with_for_update()
        )

    def add_statement(self, statement: BillingStatement) -> BillingStatement:
        self.session.add(statement)
        self.session.flush()
        return statement


class ProviderStatements:
    """One provider's statements; every statement filters by `provider_id` (others' are 404)."""

    def __init__(self, session: Session, provider_id: int) -> None:
        self.session = session
        self.provider_id = provider_id

    def page(self, *, before_id: int | None, limit: int) -> Sequence[BillingStatement]:
        """Newest first, `limit` at a time, below `before_id` (keyset pagination)."""
        statement = select(BillingStatement).where(BillingStatement.provider_id == self.provider_id)
        if before_id is not None:
            statement = statement.where(BillingStatement.id < before_id)
        return self.session.scalars(
            statement.order_by(BillingStatement.id.desc()).limit(limit)
        ).all()

    def get(self, statement_id: int) -> BillingStatement | None:
        return self.session.scalar(
            select(BillingStatement).where(
                BillingStatement.id == statement_id,
                BillingStatement.provider_id == self.provider_id,
            )
        )
