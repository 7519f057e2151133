"""Interim risk profile: a 300-850 score with reason codes, from what exists today.

Sources: the wallet's loans on CreditAggregator on every configured chain (read through the
adapter: count, outstanding, defaults, closed) and our database (how many requests the wallet
made in the last day). The watcher's projections (loans, repayments, defaults, liquidations by
borrower) will replace the chain scan of `ChainReader.loans_of`; the scoring rules stay.

Rules (every adjustment leaves a reason code, so a borrower can be told why):
* start at 650 (`thin_file` when there is no loan history at all);
* `repaid_loans`: +25 per closed loan, at most +150;
* `active_loans`: -15 per loan still active, at most -90;
* `defaults`: -150 per defaulted loan;
* `many_recent_requests`: -25 when the wallet made 5+ requests in 24 h;
* `chain_history_unavailable`: a chain could not be read (no adjustment, but said).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from backend.credit.chain import LOAN_ACTIVE, LOAN_CLOSED, LOAN_DEFAULTED, ChainLoan, ChainReader
from backend.credit.repository import recent_request_count
from chain_adapters.exceptions import ChainError

MIN_SCORE, MAX_SCORE, BASE_SCORE = 300, 850, 650


@dataclass(frozen=True)
class RiskProfile:
    score: int
    reasons: tuple[str, ...]
    loans: int
    outstanding: int
    defaults: int


def score_history(loans: list[ChainLoan], recent_requests: int) -> tuple[int, list[str]]:
    """The rules of the module docstring over already-read history (pure, for tests)."""
    score, reasons = BASE_SCORE, []
    if not loans:
        reasons.append("thin_file")
    closed = sum(1 for loan in loans if loan.state == LOAN_CLOSED)
    active = sum(1 for loan in loans if loan.state == LOAN_ACTIVE)
    defaults = sum(1 for loan in loans if loan.state == LOAN_DEFAULTED)
    if closed:
        score += min(25 * closed, 150)
        reasons.append("repaid_loans")
    if active:
        score -= min(15 * active, 90)
        reasons.append("active_loans")
    if defaults:
        score -= 150 * defaults
        reasons.append("defaults")
    if recent_requests >= 5:
        score -= 25
        reasons.append("many_recent_requests")
    return max(MIN_SCORE, min(MAX_SCORE, score)), reasons


def risk_profile(
    session: Session, wallet: str, *, reader: ChainReader, now: datetime
) -> RiskProfile:
    loans: list[ChainLoan] = []
    unavailable = False
    for chain_id in reader.chain_ids():
        try:
            loans += reader.loans_of(chain_id, wallet)
        except (ChainError, OSError, ValueError):
            unavailable = True
    recent = recent_request_count(session, wallet, since=now - timedelta(days=1))
    score, reasons = score_history(loans, recent)
    if unavailable:
        reasons.append("chain_history_unavailable")
    return RiskProfile(
        score=score,
        reasons=tuple(reasons),
        loans=len(loans),
        outstanding=sum(loan.outstanding for loan in loans if loan.state == LOAN_ACTIVE),
        defaults=sum(1 for loan in loans if loan.state == LOAN_DEFAULTED),
    )
