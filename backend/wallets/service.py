"""A wallet's own reads: its risk summary (no HTTP, no commit).

The score is the credit pipeline's own (`backend.credit.risk.risk_profile`, called, not
copied), so what a wallet sees here is what its next credit request will be priced with; the
exposure and per-loan health factors come from the chain watcher's risk projection.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from backend.credit.chain import ChainReader
from backend.credit.risk import RiskProfile, risk_profile
from backend.risk.service import ChainLoanView, Exposure, wallet_exposure, wallet_loans


@dataclass(frozen=True)
class RiskSummary:
    wallet: str
    profile: RiskProfile
    exposure: list[Exposure]
    loans: list[ChainLoanView]


def risk_summary(
    session: Session, wallet: str, *, reader: ChainReader, now: datetime
) -> RiskSummary:
    wallet = wallet.lower()
    return RiskSummary(
        wallet=wallet,
        profile=risk_profile(session, wallet, reader=reader, now=now),
        exposure=wallet_exposure(session, wallet),
        loans=wallet_loans(session, wallet),
    )
