"""The `risk` projection (head phase) and the alert delivery projection (final phase).

`risk` inserts one effect row per consumed log, then recomputes the health of the loans each new
log touched, before and after it, from the effects at or before the log's position; a crossing
below a configured threshold is an alert row keyed by that log. Alerts depend only on the
canonical log order, so incremental ingestion in any batch size equals a rebuild, and a reorg
that deletes the log deletes the alert.

Delivery choice: webhooks are sent only once the alert's block is final (`risk_alert_delivery`,
phase final), through an insert-if-absent ledger; an alert orphaned by a reorg before finality
was therefore never sent, and no retraction event is needed. The price is latency: a lender or
wallet hears of an alert `confirmations` blocks after it is raised (the alert row itself, readable
through the service, exists at the head).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from backend.config import Settings
from backend.kit.columns import utcnow
from backend.providers.webhooks.repository import endpoint_of
from backend.providers.webhooks.subscribers import Subscriber
from backend.providers.webhooks.subscriptions import enqueue
from backend.risk.alerts import alert_effects, crossings
from backend.risk.events import (
    ANSWER_UPDATED,
    ASSET_CONFIGURED,
    DEPOSITED,
    LIQUIDATED,
    LOAN_CLOSED,
    LOAN_DEFAULTED,
    LOAN_OPENED,
    REPAYMENT_RECORDED,
    RISK_EVENTS,
    WITHDRAWN,
)
from backend.risk.models import (
    AlertRecipient,
    RiskAlert,
    RiskAlertDelivery,
    RiskAssetConfigEffect,
    RiskLoanEffect,
    RiskPriceEffect,
)
from backend.risk.repository import RiskRepository
from backend.watcher.bulk import bulk_insert
from backend.watcher.projections import DecodedLog, Projection

DEFAULT_THRESHOLDS: tuple[Decimal, ...] = Settings.model_fields["risk_alert_thresholds"].default


def _addr(value: Any) -> str:
    return str(value).lower()


def _loan_row(log: DecodedLog) -> dict[str, Any] | None:
    a = log.args
    row: dict[str, Any] = {
        **log.key,
        "block_number": log.block_number,
        "loan_id": str(a["loanId"]),
        "borrower": None,
        "provider": None,
        "asset": None,
        "collateral_asset": None,
        "after": None,
    }
    if log.event == LOAN_OPENED.name:
        row.update(
            kind="opened",
            borrower=_addr(a["borrower"]),
            provider=_addr(a["provider"]),
            asset=_addr(a["asset"]),
            collateral_asset=_addr(a["collateralAsset"]),
            amount=str(a["principal"]),
        )
    elif log.event == REPAYMENT_RECORDED.name:
        row.update(kind="repaid", amount=str(a["amount"]), after=str(a["outstandingAfter"]))
    elif log.event == LOAN_DEFAULTED.name:
        row.update(kind="defaulted", amount="0", after=str(a["outstanding"]))
    elif log.event == LOAN_CLOSED.name:
        row.update(kind="closed", amount=str(a["totalRepaid"]), after=str(a["writtenOff"]))
    elif log.event == DEPOSITED.name:
        row.update(kind="deposited", amount=str(a["amount"]), after=str(a["balance"]))
    elif log.event == WITHDRAWN.name:
        row.update(kind="withdrawn", amount=str(a["amount"]), after=str(a["balance"]))
    elif log.event == LIQUIDATED.name:
        row.update(kind="liquidated", amount=str(a["seized"]), after=str(a["repayAmount"]))
    else:
        return None
    return row


class RiskProjection(Projection):
    name = "risk"
    phase = "head"
    events = RISK_EVENTS
    effect_models = (RiskAlert, RiskLoanEffect, RiskPriceEffect, RiskAssetConfigEffect)

    def __init__(self, thresholds: Sequence[Decimal] = DEFAULT_THRESHOLDS) -> None:
        self.thresholds = tuple(sorted({Decimal(t) for t in thresholds}, reverse=True))

    def apply(self, session: Session, log: DecodedLog) -> None:
        self.apply_many(session, [log])

    def apply_many(self, session: Session, logs: Sequence[DecodedLog]) -> None:
        loans, prices, configs = [], [], []
        for log in logs:
            if log.event == ANSWER_UPDATED.name:
                prices.append(
                    {
                        **log.key,
                        "block_number": log.block_number,
                        "feed": _addr(log.address),
                        "round_id": int(log.args["roundId"]),
                        "answer": str(log.args["answer"]),
                        "updated_at": int(log.args["updatedAt"]),
                    }
                )
            elif log.event == ASSET_CONFIGURED.name:
                configs.append(
                    {
                        **log.key,
                        "block_number": log.block_number,
                        "asset": _addr(log.args["asset"]),
                        "feed": _addr(log.args["feed"]),
                        "threshold_bps": int(log.args["liquidationThresholdBps"]),
                        "bonus_bps": int(log.args["liquidationBonusBps"]),
                        "token_decimals": int(log.args["tokenDecimals"]),
                        "feed_decimals": int(log.args["feedDecimals"]),
                    }
                )
            elif (row := _loan_row(log)) is not None:
                loans.append(row)
        bulk_insert(session, RiskLoanEffect.__table__, loans)
        bulk_insert(session, RiskPriceEffect.__table__, prices)
        bulk_insert(session, RiskAssetConfigEffect.__table__, configs)
        session.flush()
        if logs:
            self._raise_alerts(session, logs)

    def _raise_alerts(self, session: Session, logs: Sequence[DecodedLog]) -> None:
        """Alert rows for `logs`, from only the history of the loans they can touch.

        (The whole-chain replay this replaces cost O(chain history) per step: O(n^2) over a
        long backfill. `alert_effects` explains why the subset gives the same alerts.)
        """
        chain_id = logs[0].chain_id
        fresh = {(log.block_hash, log.log_index) for log in logs}
        positions = [(log.block_number, log.log_index) for log in logs]
        effects = alert_effects(
            RiskRepository(session), chain_id, fresh, min(positions), max(positions)
        )
        alerts = crossings(chain_id, effects, fresh, self.thresholds)
        bulk_insert(session, RiskAlert.__table__, alerts)


class RiskAlertDeliveryProjection(Projection):
    """Sends each alert to its lender's and its borrower's webhooks once its log is final.

    The ledger has one row per (alert, recipient), claimed insert-if-absent, so each of the two
    hears of an alert exactly once whatever replays (batches, rebuilds, a crash mid-batch). The
    lender always gets a delivery row (if the provider exists; without an endpoint it waits in
    the retry schedule for one); the wallet only when it has set an endpoint by then.
    """

    name = "risk_alert_delivery"
    phase = "final"
    events = RISK_EVENTS
    effect_models = ()

    def apply(self, session: Session, log: DecodedLog) -> None:
        self.apply_many(session, [log])

    def apply_many(self, session: Session, logs: Sequence[DecodedLog]) -> None:
        if not logs:
            return
        repo = RiskRepository(session)
        keys = {(log.block_hash, log.log_index) for log in logs}
        for alert in repo.alerts_of_logs(logs[0].chain_id, keys):
            tx_hash = repo.transaction_hash(alert.chain_id, alert.block_hash, alert.log_index)
            payload = alert_payload(alert, transaction_hash=tx_hash)
            provider_id = repo.provider_id_by_address(alert.provider)
            lender = Subscriber.provider(provider_id) if provider_id is not None else None
            wallet = Subscriber.wallet(alert.borrower)
            borrower = wallet if endpoint_of(session, wallet) is not None else None
            _offer(session, repo, alert, AlertRecipient.PROVIDER, lender, payload)
            _offer(session, repo, alert, AlertRecipient.WALLET, borrower, payload)


def _offer(
    session: Session,
    repo: RiskRepository,
    alert: RiskAlert,
    recipient: AlertRecipient,
    subscriber: Subscriber | None,
    payload: dict[str, Any],
) -> None:
    """Claim the (alert, recipient) ledger row; if this call claimed it, enqueue the webhook."""
    ledger = RiskAlertDelivery(
        chain_id=alert.chain_id,
        block_hash=alert.block_hash,
        log_index=alert.log_index,
        loan_id=alert.loan_id,
        threshold=alert.threshold,
        recipient=recipient.value,
        provider_id=subscriber.provider_id if subscriber else None,
        wallet=alert.borrower if recipient is AlertRecipient.WALLET else None,
        delivery_id=None,
        created_at=utcnow(),
    )
    if not repo.claim_delivery(ledger) or subscriber is None:
        return
    repo.set_delivery_id(ledger, enqueue(session, subscriber, "risk.alert", payload))


def alert_payload(alert: RiskAlert, *, transaction_hash: str | None) -> dict[str, Any]:
    """The webhook body of an alert: which loan, which threshold, and the log that caused it."""
    return {
        "chain_id": alert.chain_id,
        "loan_id": alert.loan_id,
        "borrower": alert.borrower,
        "provider": alert.provider,
        "threshold": alert.threshold,
        "health_factor": alert.health_factor,
        "price": alert.price,
        "block_number": alert.block_number,
        "block_hash": alert.block_hash,
        "log_index": alert.log_index,
        "transaction_hash": transaction_hash,
    }
