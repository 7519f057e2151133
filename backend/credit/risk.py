"""The borrower's risk profile in the credit pipeline: one score, the watcher's, plus recency.

The score (300-850 with reason codes) is `backend.risk.service.score` over the wallet's history
as the chain watcher projected it from contract events on every configured chain: loans,
repayments, full repayments, defaults, liquidations, open debt. One rule set serves the quote
fan-out, `GET /v1/me/risk` and the lenders' webhooks, so a borrower is told the same number
everywhere. Reading the projection costs one indexed query per chain for the wallet's own
loans, where the earlier interim read scanned up to 1,000 `getLoan` calls per chain per request.

The pipeline adds what only the database knows: `MANY_RECENT_REQUESTS` (-25 when the wallet
asked 5+ times in 24 h). A chain the watcher has not ingested yet adds
`CHAIN_HISTORY_UNAVAILABLE` (no points: the history there is unknown, not clean).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from backend.credit.chain import ChainReader
from backend.credit.repository import recent_request_count
from backend.risk.service import MAX_SCORE, MIN_SCORE, Score, score, wallet_history

RECENT_REQUESTS_LIMIT = 5
RECENT_REQUESTS_PENALTY = 25


@dataclass(frozen=True)
class RiskProfile:
    score: int
    reasons: tuple[str, ...]
    loans: int
    outstanding: int
    defaults: int


def with_recency(base: Score, recent_requests: int) -> Score:
    """The watcher's score adjusted for the wallet's recent requests (pure, for tests)."""
    if recent_requests < RECENT_REQUESTS_LIMIT:
        return base
    value = max(MIN_SCORE, min(MAX_SCORE, base.value - RECENT_REQUESTS_PENALTY))
    return Score(value, (*base.reasons, "MANY_RECENT_REQUESTS"))


def risk_profile(
    session: Session, wallet: str, *, reader: ChainReader, now: datetime
) -> RiskProfile:
    projected = wallet_history(session, reader.chain_ids(), wallet)
    recent = recent_request_count(session, wallet, since=now - timedelta(days=1))
    result = with_recency(score(projected.history), recent)
    reasons = result.reasons
    if projected.unwatched:
        reasons = (*reasons, "CHAIN_HISTORY_UNAVAILABLE")
    return RiskProfile(
        score=result.value,
        reasons=reasons,
        loans=projected.loans,
        outstanding=projected.history.outstanding,
        defaults=projected.history.defaults,
    )
