"""Where quotes come from: DeFi pools (read on-chain) and traditional lenders (HTTP or card)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from backend.credit.models import Outcome


@dataclass(frozen=True)
class Ask:
    """The credit request as every source sees it."""

    request_id: str
    wallet: str
    asset: str
    amount: int
    term_days: int
    chain_id: int  # the chain the quote would settle on
    score: int
    reasons: tuple[str, ...]
    collateral: dict[str, str | int] | None
    respond_by: str  # RFC 3339: the overall deadline


@dataclass(frozen=True)
class RawQuote:
    """An offer before normalisation: a nominal APR and an origination fee."""

    nominal_apr: Decimal
    origination_fee: int
    provider_address: str  # the `provider` of the EIP-712 terms (pool or lender address)
    rate_ray: int | None = None  # DeFi: the pool's borrowRateAfter(amount), a ray


@dataclass(frozen=True)
class SourceResult:
    outcome: Outcome
    quote: RawQuote | None = None
    reason: str | None = None
    duration_ms: int | None = None
    counts_as_failure: bool = field(default=False)
