"""The `billing` projection (final phase): one origination row per final LoanOpened."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from backend.billing.models import BillingOrigination
from backend.risk.events import LOAN_OPENED
from backend.watcher.bulk import bulk_insert
from backend.watcher.projections import DecodedLog, Projection


class BillingProjection(Projection):
    name = "billing"
    phase = "final"
    events = (LOAN_OPENED,)
    effect_models = (BillingOrigination,)

    def apply(self, session: Session, log: DecodedLog) -> None:
        self.apply_many(session, [log])

    def apply_many(self, session: Session, logs: Sequence[DecodedLog]) -> None:
        bulk_insert(
            session,
            BillingOrigination.__table__,
            [
                {
                    **log.key,
                    "block_number": log.block_number,
                    "loan_id": str(log.args["loanId"]),
                    "provider": str(log.args["provider"]).lower(),
                    "asset": str(log.args["asset"]).lower(),
                    "principal": str(log.args["principal"]),
                }
                for log in logs
            ],
        )
