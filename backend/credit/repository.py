"""All SQL of the credit domain.

Isolation lives here: `WalletCreditRepository` only ever filters by its wallet, and
`ProviderCreditRepository` only by its provider id (a provider sees a request only through its
own outcome row, and only its own quotes). Services never build queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, insert, or_, select, update
from sqlalchemy.orm import Session

from backend.credit.models import (
    CircuitBreaker,
    CreditQuote,
    CreditRequest,
    DefiPool,
    ProviderOutcome,
    WalletKyc,
)
from backend.providers.models import (
    Provider,
    ProviderProfile,
    ProviderRateCard,
    ProviderStatus,
    WebhookEndpoint,
)


@dataclass(frozen=True)
class ProviderConfig:
    """What the pipeline needs to know about one active provider."""

    provider: Provider
    rate_card: ProviderRateCard | None
    webhook: WebhookEndpoint | None
    pool: DefiPool | None
    payout_address: str | None = None  # where a rate-card loan's principal is paid from


class CreditRepository:
    """Rows not owned by one tenant: KYC tiers, pools, the active provider set."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def kyc_tier(self, wallet: str) -> int:
        row = self.session.get(WalletKyc, wallet)
        return row.tier if row is not None else 0

    def set_kyc_tier(self, wallet: str, tier: int, *, now: datetime) -> None:
        row = self.session.get(WalletKyc, wallet)
        if row is None:
            self.session.add(WalletKyc(wallet=wallet, tier=tier, updated_at=now))
        else:
            row.tier, row.updated_at = tier, now
        self.session.flush()

    def set_defi_pool(self, provider_id: int, chain_id: int, pool: str, asset: str) -> None:
        row = self.session.get(DefiPool, provider_id)
        if row is None:
            self.session.add(
                DefiPool(provider_id=provider_id, chain_id=chain_id, pool_address=pool, asset=asset)
            )
        else:
            row.chain_id, row.pool_address, row.asset = chain_id, pool, asset
        self.session.flush()

    def active_ids(self) -> list[int]:
        """The ids of every active provider (no configuration loaded)."""
        return [
            int(pid)
            for pid in self.session.scalars(
                select(Provider.id)
                .where(Provider.status == ProviderStatus.ACTIVE.value)
                .order_by(Provider.id)
            )
        ]

    def active_providers(self) -> list[ProviderConfig]:
        rows = self.session.execute(
            select(
                Provider,
                ProviderRateCard,
                WebhookEndpoint,
                DefiPool,
                ProviderProfile.payout_address,
            )
            .outerjoin(ProviderRateCard, ProviderRateCard.provider_id == Provider.id)
            .outerjoin(WebhookEndpoint, WebhookEndpoint.provider_id == Provider.id)
            .outerjoin(DefiPool, DefiPool.provider_id == Provider.id)
            .outerjoin(ProviderProfile, ProviderProfile.provider_id == Provider.id)
            .where(Provider.status == ProviderStatus.ACTIVE.value)
            .order_by(Provider.id)
        ).all()
        return [ProviderConfig(p, card, hook, pool, payout) for p, card, hook, pool, payout in rows]

    def add_all(self, rows: Sequence[CreditRequest | CreditQuote | ProviderOutcome]) -> None:
        self.session.add_all(rows)
        self.session.flush()

    def insert_request(
        self,
        request: CreditRequest,
        quotes: Sequence[CreditQuote],
        outcomes: Sequence[ProviderOutcome],
    ) -> None:
        """A new request with its quotes and outcomes: one INSERT per table (multi-row for
        quotes and outcomes), through Core. Nothing is read back, so the unit of work's
        per-object bookkeeping and flush ordering would only cost time; the objects stay
        transient and serve as the values (every column, `created_at` included, is set)."""
        self.session.execute(insert(_table(CreditRequest)), [_values(request)])
        if quotes:
            self.session.execute(insert(_table(CreditQuote)), [_values(q) for q in quotes])
        if outcomes:
            self.session.execute(insert(_table(ProviderOutcome)), [_values(o) for o in outcomes])


def _table(model: type[CreditRequest | CreditQuote | ProviderOutcome]) -> Table:
    return cast(Table, model.__table__)


def _values(row: CreditRequest | CreditQuote | ProviderOutcome) -> dict[str, object]:
    return {c.key: getattr(row, c.key) for c in _table(type(row)).columns}


class WalletCreditRepository:
    """One wallet's credit requests: every query is filtered by `wallet`."""

    def __init__(self, session: Session, wallet: str) -> None:
        self.session = session
        self.wallet = wallet

    def request(self, request_id: str) -> CreditRequest | None:
        return self.session.scalar(
            select(CreditRequest).where(
                CreditRequest.id == request_id, CreditRequest.wallet == self.wallet
            )
        )

    def quotes(self, request_id: str) -> Sequence[CreditQuote]:
        return self.session.scalars(
            select(CreditQuote)
            .join(CreditRequest, CreditRequest.id == CreditQuote.request_id)
            .where(CreditQuote.request_id == request_id, CreditRequest.wallet == self.wallet)
            .order_by(CreditQuote.rank.is_(None), CreditQuote.rank, CreditQuote.id)
        ).all()

    def outcomes(self, request_id: str) -> Sequence[ProviderOutcome]:
        return self.session.scalars(
            select(ProviderOutcome)
            .join(CreditRequest, CreditRequest.id == ProviderOutcome.request_id)
            .where(ProviderOutcome.request_id == request_id, CreditRequest.wallet == self.wallet)
            .order_by(ProviderOutcome.provider_id)
        ).all()


class ProviderCreditRepository:
    """One provider's view: requests sent to it (through its outcome row) and its quotes."""

    def __init__(self, session: Session, provider_id: int) -> None:
        self.session = session
        self.provider_id = provider_id

    def requests(self, *, limit: int) -> Sequence[tuple[CreditRequest, ProviderOutcome]]:
        rows = self.session.execute(
            select(CreditRequest, ProviderOutcome)
            .join(ProviderOutcome, ProviderOutcome.request_id == CreditRequest.id)
            .where(ProviderOutcome.provider_id == self.provider_id)
            .order_by(CreditRequest.created_at.desc(), CreditRequest.id)
            .limit(limit)
        ).all()
        return [(request, outcome) for request, outcome in rows]

    def quotes(self, *, limit: int) -> Sequence[CreditQuote]:
        return self.session.scalars(
            select(CreditQuote)
            .where(CreditQuote.provider_id == self.provider_id)
            .order_by(CreditQuote.created_at.desc(), CreditQuote.id)
            .limit(limit)
        ).all()

    def kind(self) -> str | None:
        """`defi` or `traditional` (None: no such provider)."""
        return self.session.scalar(select(Provider.kind).where(Provider.id == self.provider_id))

    def defi_pool(self) -> DefiPool | None:
        return self.session.get(DefiPool, self.provider_id)

    def set_defi_pool(self, chain_id: int, pool: str, asset: str) -> None:
        CreditRepository(self.session).set_defi_pool(self.provider_id, chain_id, pool, asset)


class BreakerRepository:
    """Circuit breaker rows; the probe claim is a compare-and-set UPDATE."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, provider_id: int) -> CircuitBreaker | None:
        return self.session.get(CircuitBreaker, provider_id)

    def get_or_create(self, provider_id: int, *, now: datetime) -> CircuitBreaker:
        row = self.get(provider_id)
        if row is None:
            row = CircuitBreaker(provider_id=provider_id, consecutive_failures=0, updated_at=now)
            self.session.add(row)
            self.session.flush()
        return row

    def claim_probe(self, provider_id: int, *, stale_before: datetime, now: datetime) -> bool:
        """Take the half-open probe unless another caller holds a fresh one; True if taken.

        A probe whose caller died never reports back; one older than `stale_before` is taken
        over, so a crash cannot hold a breaker open for ever.
        """
        result = self.session.execute(
            update(CircuitBreaker)
            .where(
                CircuitBreaker.provider_id == provider_id,
                CircuitBreaker.opened_at.is_not(None),
                or_(
                    CircuitBreaker.probe_started_at.is_(None),
                    CircuitBreaker.probe_started_at < stale_before,
                ),
            )
            .values(probe_started_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        row = self.get(provider_id)
        if row is not None:
            self.session.refresh(row)
        return int(result.rowcount) == 1  # type: ignore[attr-defined]


def recent_request_count(session: Session, wallet: str, *, since: datetime) -> int:
    """How many credit requests `wallet` made since `since` (for the risk profile)."""
    return len(
        session.scalars(
            select(CreditRequest.id).where(
                CreditRequest.wallet == wallet, CreditRequest.created_at >= since
            )
        ).all()
    )
