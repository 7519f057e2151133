"""Risk reads: per-loan state with health factors, wallet exposure, and the 300-850 score.

`score` is a pure function of a `History` (counts and amounts projected from chain events), so
its laws (bounded; never lower with more repayments; never higher with more defaults or
liquidations) are checked with hypothesis rather than examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm import Session

from backend.risk.models import RiskAlert
from backend.risk.repository import LATEST, AlertPosition, RiskRepository
from backend.risk.state import Loan, RiskState, fold
from backend.watcher.repository import WatcherRepository

MIN_SCORE, MAX_SCORE, BASE_SCORE = 300, 850, 600


@dataclass(frozen=True)
class History:
    repayments: int = 0
    loans_repaid: int = 0
    defaults: int = 0
    liquidations: int = 0
    outstanding: int = 0  # open debt now, smallest units summed over the wallet's loans
    repaid_total: int = 0  # everything ever repaid, same units


@dataclass(frozen=True)
class Score:
    value: int
    reasons: tuple[str, ...]


def score(history: History) -> Score:
    """300-850 with reason codes; each term is capped so no single signal dominates."""
    points = BASE_SCORE
    reasons: list[str] = []
    if history.repayments:
        points += min(history.repayments, 20) * 6
        reasons.append("REPAYMENT_HISTORY")
    if history.loans_repaid:
        points += min(history.loans_repaid, 10) * 10
        reasons.append("LOANS_REPAID")
    if history.defaults:
        points -= min(history.defaults, 5) * 110
        reasons.append("DEFAULTS")
    if history.liquidations:
        points -= min(history.liquidations, 5) * 50
        reasons.append("LIQUIDATIONS")
    if history.outstanding > 2 * history.repaid_total:
        points -= 40
        reasons.append("EXPOSURE_ABOVE_HISTORY")
    if not reasons:
        reasons.append("NO_HISTORY")
    return Score(max(MIN_SCORE, min(MAX_SCORE, points)), tuple(reasons))


def history_of(state: RiskState, wallet: str) -> History:
    loans = [loan for loan in state.loans.values() if loan.borrower == wallet.lower()]
    return History(
        repayments=sum(loan.repayments for loan in loans),
        loans_repaid=sum(1 for loan in loans if loan.status == "repaid"),
        defaults=sum(1 for loan in loans if loan.status == "defaulted"),
        liquidations=sum(loan.liquidations for loan in loans),
        outstanding=sum(loan.outstanding for loan in loans),
        repaid_total=sum(loan.repaid for loan in loans),
    )


def risk_state(session: Session, chain_id: int) -> RiskState:
    """The projected state of `chain_id` (a query over the effect rows, folded)."""
    return fold(RiskRepository(session).effects(chain_id))


def wallet_state(session: Session, chain_id: int, wallet: str) -> RiskState:
    """The projected state of `wallet`'s loans on `chain_id`, with their assets priced.

    Folds only what those loans need (their own effects, the latest config of each asset they
    borrow or pledge, the latest price of each feed those configs name), so a wallet's read
    costs its own history, not the chain's."""
    repo = RiskRepository(session)
    loan_ids = repo.borrower_loan_ids(chain_id, wallet)
    if not loan_ids:
        return RiskState()
    history = repo.loan_history(chain_id, loan_ids, before=LATEST)
    assets = {a for e in history if e.kind == "opened" for a in (e.asset, e.collateral_asset) if a}
    configs = repo.latest_configs(chain_id, assets, before=LATEST)
    prices = repo.latest_prices(chain_id, {c.feed for c in configs}, before=LATEST)
    return fold([*history, *configs, *prices])


@dataclass(frozen=True)
class WalletHistory:
    """A wallet's history over several chains, and the chains the watcher has not ingested."""

    history: History
    loans: int
    unwatched: tuple[int, ...]


def wallet_history(session: Session, chain_ids: list[int], wallet: str) -> WalletHistory:
    """The wallet's history summed over `chain_ids`, from the watcher's projection."""
    watched = {cursor.chain_id for cursor in WatcherRepository(session).all_cursors()}
    states = [wallet_state(session, c, wallet) for c in chain_ids if c in watched]
    histories = [history_of(state, wallet) for state in states]
    return WalletHistory(
        history=History(
            repayments=sum(h.repayments for h in histories),
            loans_repaid=sum(h.loans_repaid for h in histories),
            defaults=sum(h.defaults for h in histories),
            liquidations=sum(h.liquidations for h in histories),
            outstanding=sum(h.outstanding for h in histories),
            repaid_total=sum(h.repaid_total for h in histories),
        ),
        loans=sum(len(state.loans) for state in states),
        unwatched=tuple(c for c in chain_ids if c not in watched),
    )


def wallet_score(session: Session, chain_ids: list[int], wallet: str) -> Score:
    """The wallet's score over its loans on `chain_ids` (the watcher's projection only)."""
    return score(wallet_history(session, chain_ids, wallet).history)


@dataclass(frozen=True)
class LoanView:
    loan: Loan
    health_factor: Decimal | None


def loans(session: Session, chain_id: int) -> list[LoanView]:
    state = risk_state(session, chain_id)
    return [LoanView(loan, state.health_factor(i)) for i, loan in sorted(state.loans.items())]


# Reads for one wallet or one lender (the `/v1/me/...` and `/v1/provider/alerts` APIs) ----------

#: Keyset position of a loan in (chain_id, loan_id) order.
LoanPosition = tuple[int, int]


@dataclass(frozen=True)
class ChainLoanView:
    chain_id: int
    loan: Loan
    health_factor: Decimal | None


def wallet_loans(
    session: Session, wallet: str, *, after: LoanPosition | None = None, limit: int | None = None
) -> list[ChainLoanView]:
    """The wallet's loans as borrower on every chain, in (chain, loan id) order after `after`."""
    wallet = wallet.lower()
    views: list[ChainLoanView] = []
    for chain_id in RiskRepository(session).chains_of(borrower=wallet):
        state = wallet_state(session, chain_id, wallet)
        for loan_id, loan in sorted(state.loans.items()):
            if loan.borrower != wallet or (after is not None and (chain_id, loan_id) <= after):
                continue
            views.append(ChainLoanView(chain_id, loan, state.health_factor(loan_id)))
            if limit is not None and len(views) >= limit:
                return views
    return views


@dataclass(frozen=True)
class Exposure:
    chain_id: int
    asset: str
    outstanding: int


def wallet_exposure(session: Session, wallet: str) -> list[Exposure]:
    """Outstanding debt of the wallet per chain and loan asset (open and defaulted loans)."""
    wallet = wallet.lower()
    out: list[Exposure] = []
    for chain_id in RiskRepository(session).chains_of(borrower=wallet):
        totals = wallet_state(session, chain_id, wallet).exposure(wallet)
        out += [Exposure(chain_id, asset, amount) for asset, amount in sorted(totals.items())]
    return out


@dataclass(frozen=True)
class AlertView:
    alert: RiskAlert
    transaction_hash: str | None

    @property
    def position(self) -> AlertPosition:
        a = self.alert
        return (a.chain_id, a.block_number, a.log_index, a.loan_id, a.threshold)


def wallet_alerts(
    session: Session, wallet: str, *, after: AlertPosition | None, limit: int
) -> list[AlertView]:
    """Alerts raised on the wallet's loans (at the head: a reorg may still remove one)."""
    rows = RiskRepository(session).alert_page(borrower=wallet, after=after, limit=limit)
    return [AlertView(alert, tx) for alert, tx in rows]


def lender_alerts(
    session: Session, payout_address: str | None, *, after: AlertPosition | None, limit: int
) -> list[AlertView]:
    """Alerts on the loans a lender made (known on chain by its payout address; none without)."""
    if payout_address is None:
        return []
    rows = RiskRepository(session).alert_page(provider=payout_address, after=after, limit=limit)
    return [AlertView(alert, tx) for alert, tx in rows]
