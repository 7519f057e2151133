"""All SQL of the risk domain: effect rows in, the common `Effect` shape and alerts out."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from backend.providers.models import ProviderProfile
from backend.risk.models import (
    RiskAlert,
    RiskAlertDelivery,
    RiskAssetConfigEffect,
    RiskLoanEffect,
    RiskPriceEffect,
)
from backend.risk.state import Effect
from backend.watcher.models import WatcherLog

#: Keyset position of an alert in (chain_id, block_number, log_index, loan_id, threshold) order.
AlertPosition = tuple[int, int, int, str, str]


class RiskRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def effects(self, chain_id: int) -> list[Effect]:
        """Every risk effect of `chain_id`, in chain order."""
        out: list[Effect] = []
        for loan in self.session.scalars(
            select(RiskLoanEffect).where(RiskLoanEffect.chain_id == chain_id)
        ):
            out.append(
                Effect(
                    position=(loan.block_number, loan.log_index),
                    block_hash=loan.block_hash,
                    table="loan",
                    kind=loan.kind,
                    loan_id=int(loan.loan_id),
                    borrower=loan.borrower,
                    provider=loan.provider,
                    asset=loan.asset,
                    collateral_asset=loan.collateral_asset,
                    amount=int(loan.amount),
                    after=None if loan.after is None else int(loan.after),
                )
            )
        for price in self.session.scalars(
            select(RiskPriceEffect).where(RiskPriceEffect.chain_id == chain_id)
        ):
            out.append(
                Effect(
                    position=(price.block_number, price.log_index),
                    block_hash=price.block_hash,
                    table="price",
                    feed=price.feed,
                    answer=int(price.answer),
                )
            )
        for config in self.session.scalars(
            select(RiskAssetConfigEffect).where(RiskAssetConfigEffect.chain_id == chain_id)
        ):
            out.append(
                Effect(
                    position=(config.block_number, config.log_index),
                    block_hash=config.block_hash,
                    table="config",
                    asset=config.asset,
                    feed=config.feed,
                    threshold_bps=config.threshold_bps,
                    token_decimals=config.token_decimals,
                    feed_decimals=config.feed_decimals,
                )
            )
        out.sort(key=lambda e: e.position)
        return out

    def alerts(self, chain_id: int) -> Sequence[RiskAlert]:
        return self.session.scalars(
            select(RiskAlert)
            .where(RiskAlert.chain_id == chain_id)
            .order_by(RiskAlert.block_number, RiskAlert.log_index, RiskAlert.threshold)
        ).all()

    def alerts_of_logs(self, chain_id: int, keys: set[tuple[str, int]]) -> list[RiskAlert]:
        rows = self.alerts(chain_id)
        return [a for a in rows if (a.block_hash, a.log_index) in keys]

    def transaction_hash(self, chain_id: int, block_hash: str, log_index: int) -> str | None:
        """The transaction of a stored log (None once a reorg has removed it)."""
        return self.session.scalar(
            select(WatcherLog.transaction_hash).where(
                WatcherLog.chain_id == chain_id,
                WatcherLog.block_hash == block_hash,
                WatcherLog.log_index == log_index,
            )
        )

    def chains_of(self, *, borrower: str | None = None, provider: str | None = None) -> list[int]:
        """Chains on which `borrower` borrowed (or `provider` lent): where its loans are."""
        statement = select(RiskLoanEffect.chain_id).where(RiskLoanEffect.kind == "opened")
        if borrower is not None:
            statement = statement.where(RiskLoanEffect.borrower == borrower.lower())
        if provider is not None:
            statement = statement.where(RiskLoanEffect.provider == provider.lower())
        return sorted(set(self.session.scalars(statement.distinct())))

    def alert_page(
        self,
        *,
        borrower: str | None = None,
        provider: str | None = None,
        after: AlertPosition | None,
        limit: int,
    ) -> list[tuple[RiskAlert, str | None]]:
        """Alerts of one borrower or one lender (exactly one must be given), in chain order
        after `after` (keyset), each with the transaction hash of the log that raised it."""
        if (borrower is None) == (provider is None):
            raise ValueError("give exactly one of borrower and provider")
        position = tuple_(
            RiskAlert.chain_id,
            RiskAlert.block_number,
            RiskAlert.log_index,
            RiskAlert.loan_id,
            RiskAlert.threshold,
        )
        statement = select(RiskAlert, WatcherLog.transaction_hash).outerjoin(
            WatcherLog,
            (WatcherLog.chain_id == RiskAlert.chain_id)
            & (WatcherLog.block_hash == RiskAlert.block_hash)
            & (WatcherLog.log_index == RiskAlert.log_index),
        )
        if borrower is not None:
            statement = statement.where(RiskAlert.borrower == borrower.lower())
        else:
            assert provider is not None
            statement = statement.where(RiskAlert.provider == provider.lower())
        if after is not None:
            statement = statement.where(position > tuple_(*after))
        statement = statement.order_by(
            RiskAlert.chain_id,
            RiskAlert.block_number,
            RiskAlert.log_index,
            RiskAlert.loan_id,
            RiskAlert.threshold,
        ).limit(limit)
        return [(row[0], row[1]) for row in self.session.execute(statement)]

    def provider_id_by_address(self, address: str) -> int | None:
        """The provider whose payout address is `address` (how a lender is known on chain)."""
        return self.session.scalar(
            select(ProviderProfile.provider_id)
            .where(ProviderProfile.payout_address == address.lower())
            .order_by(ProviderProfile.provider_id)
            .limit(1)
        )

    def claim_delivery(self, row: RiskAlertDelivery) -> bool:
        """Insert the ledger row unless it exists; True if this call inserted it."""
        values = {c.name: getattr(row, c.name) for c in RiskAlertDelivery.__table__.columns}
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            insert(RiskAlertDelivery)
            .values(values)
            .on_conflict_do_nothing()
            .returning(RiskAlertDelivery.chain_id)
        )
        # RETURNING, not rowcount: psycopg reports -1 for an ORM-bound INSERT ... DO NOTHING.
        return self.session.execute(statement).first() is not None

    def set_delivery_id(self, row: RiskAlertDelivery, delivery_id: int) -> None:
        stored = self.session.get(
            RiskAlertDelivery,
            (
                row.chain_id,
                row.block_hash,
                row.log_index,
                row.loan_id,
                row.threshold,
                row.recipient,
            ),
        )
        assert stored is not None
        stored.delivery_id = delivery_id
