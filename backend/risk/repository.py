"""All SQL of the risk domain: effect rows in, the common `Effect` shape and alerts out."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, func, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, Session

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


#: (block_number, log_index): where a log, and so its effect rows, sit in chain order.
Position = tuple[int, int]
#: A position after every log: "before LATEST" is the whole history.
LATEST: Position = (2**63 - 1, 2**31 - 1)
#: Most values bound into one IN list (SQLite's default limit is 32,766 variables).
_IN_CHUNK = 10_000
EffectModel = type[RiskLoanEffect] | type[RiskPriceEffect] | type[RiskAssetConfigEffect]


class RiskRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def effects(self, chain_id: int) -> list[Effect]:
        """Every risk effect of `chain_id`, in chain order."""
        return _in_order(
            effect
            for model in (RiskLoanEffect, RiskPriceEffect, RiskAssetConfigEffect)
            for effect in self._effects(model, model.chain_id == chain_id)
        )

    def effects_between(self, chain_id: int, first: Position, last: Position) -> list[Effect]:
        """The effects at positions `first` to `last` (both included), in chain order."""
        return _in_order(
            effect
            for model in (RiskLoanEffect, RiskPriceEffect, RiskAssetConfigEffect)
            for effect in self._effects(
                model,
                model.chain_id == chain_id,
                ~_before(model, first),
                _at_or_before(model, last),
            )
        )

    def assets_priced_by(self, chain_id: int, feeds: set[str], *, until: Position) -> set[str]:
        """Assets configured with one of `feeds` at any time up to `until`: a superset of the
        assets whose loans a price (or config) update of those feeds can touch by then."""
        if not feeds:
            return set()
        config = RiskAssetConfigEffect
        return set(
            self.session.scalars(
                select(config.asset)
                .where(
                    config.chain_id == chain_id,
                    config.feed.in_(sorted(feeds)),
                    _at_or_before(config, until),
                )
                .distinct()
            )
        )

    def loans_using(self, chain_id: int, assets: set[str], *, before: Position) -> set[int]:
        """Loans opened before `before` that borrow or pledge one of `assets`."""
        if not assets:
            return set()
        loan, listed = RiskLoanEffect, sorted(assets)
        statement = select(loan.loan_id).where(
            loan.chain_id == chain_id,
            loan.kind == "opened",
            _before(loan, before),
            or_(loan.asset.in_(listed), loan.collateral_asset.in_(listed)),
        )
        return {int(i) for i in self.session.scalars(statement)}

    def loan_history(self, chain_id: int, loan_ids: set[int], *, before: Position) -> list[Effect]:
        """The effects before `before` of the loans in `loan_ids`, in chain order.

        The ids go in as a list, not as an IN (subquery) of `loans_using`: without fresh table
        statistics (a backfill's own transaction) PostgreSQL plans that semi-join as a nested
        loop, ~100x slower at 10k effects. Chunks keep SQLite under its bound-variable limit.
        """
        loan, ids = RiskLoanEffect, sorted(str(i) for i in loan_ids)
        return _in_order(
            effect
            for start in range(0, len(ids), _IN_CHUNK)
            for effect in self._effects(
                loan,
                loan.chain_id == chain_id,
                _before(loan, before),
                loan.loan_id.in_(ids[start : start + _IN_CHUNK]),
            )
        )

    def latest_configs(self, chain_id: int, assets: set[str], *, before: Position) -> list[Effect]:
        """The last config before `before` of each of `assets` (those never configured: none)."""
        if not assets:
            return []
        config = RiskAssetConfigEffect
        return self._latest(
            config, config.asset, config.asset.in_(sorted(assets)), chain_id, before
        )

    def latest_prices(self, chain_id: int, feeds: set[str], *, before: Position) -> list[Effect]:
        """The last answer before `before` of each of `feeds` (those never updated: none)."""
        if not feeds:
            return []
        price = RiskPriceEffect
        return self._latest(price, price.feed, price.feed.in_(sorted(feeds)), chain_id, before)

    def _latest(
        self,
        model: EffectModel,
        group: InstrumentedAttribute[str],
        among: ColumnElement[bool],
        chain_id: int,
        before: Position,
    ) -> list[Effect]:
        """Per `group` value, the effect row nearest before `before` (one query, any count)."""
        rank = (
            func.row_number()
            .over(partition_by=group, order_by=(model.block_number.desc(), model.log_index.desc()))
            .label("rank")
        )
        ranked = (
            select(*model.__table__.columns, rank)
            .where(model.chain_id == chain_id, among, _before(model, before))
            .subquery()
        )
        columns = [ranked.c[c.name] for c in model.__table__.columns]
        rows = self.session.execute(select(*columns).where(ranked.c.rank == 1))
        return _in_order(map(_AS_EFFECT[model], rows))

    def _effects(self, model: EffectModel, *where: ColumnElement[bool]) -> Iterator[Effect]:
        rows = self.session.execute(select(*model.__table__.columns).where(*where))
        return map(_AS_EFFECT[model], rows)

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

    def borrower_loan_ids(self, chain_id: int, borrower: str) -> set[int]:
        """The ids of the loans `borrower` opened on `chain_id` (its `opened` effects)."""
        loan = RiskLoanEffect
        statement = select(loan.loan_id).where(
            loan.chain_id == chain_id, loan.kind == "opened", loan.borrower == borrower.lower()
        )
        return {int(i) for i in self.session.scalars(statement.distinct())}

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


def _before(model: EffectModel, position: Position) -> ColumnElement[bool]:
    """Rows strictly before `position` in (block_number, log_index) order."""
    block, index = position
    return or_(
        model.block_number < block, and_(model.block_number == block, model.log_index < index)
    )


def _at_or_before(model: EffectModel, position: Position) -> ColumnElement[bool]:
    block, index = position
    return or_(
        model.block_number < block, and_(model.block_number == block, model.log_index <= index)
    )


def _in_order(effects: Iterable[Effect]) -> list[Effect]:
    return sorted(effects, key=lambda e: e.position)


def _loan_effect(row: Row[Any]) -> Effect:
    return Effect(
        position=(row.block_number, row.log_index),
        block_hash=row.block_hash,
        table="loan",
        kind=row.kind,
        loan_id=int(row.loan_id),
        borrower=row.borrower,
        provider=row.provider,
        asset=row.asset,
        collateral_asset=row.collateral_asset,
        amount=int(row.amount),
        after=None if row.after is None else int(row.after),
    )


def _price_effect(row: Row[Any]) -> Effect:
    return Effect(
        position=(row.block_number, row.log_index),
        block_hash=row.block_hash,
        table="price",
        feed=row.feed,
        answer=int(row.answer),
    )


def _config_effect(row: Row[Any]) -> Effect:
    return Effect(
        position=(row.block_number, row.log_index),
        block_hash=row.block_hash,
        table="config",
        asset=row.asset,
        feed=row.feed,
        threshold_bps=row.threshold_bps,
        token_decimals=row.token_decimals,
        feed_decimals=row.feed_decimals,
    )


#: Each effect table's row (plain columns: no ORM identity map, ~5x cheaper per row) as an
#: `Effect`.
_AS_EFFECT: dict[EffectModel, Callable[[Row[Any]], Effect]] = {
    RiskLoanEffect: _loan_effect,
    RiskPriceEffect: _price_effect,
    RiskAssetConfigEffect: _config_effect,
}
