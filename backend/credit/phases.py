"""What the credit request's three phases hand each other (see `backend.credit.service`).

Plain values: phase 1 (`Prepared`, read-only) plans the calls, phase 2 (`Gathered`, the network
wait) brings back the answers, each chain's market and the quotes priced as they arrived, and
phase 3 normalises the rest, ranks and persists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from backend.credit.assets import AssetEntry, AssetRegistry
from backend.credit.circuit_breaker import BreakerState
from backend.credit.lender_http import LenderPoster
from backend.credit.normalise import Collateral, Normalised, Prices
from backend.credit.pricing.errors import PricingError
from backend.credit.risk import RiskProfile
from backend.credit.schemas import CreditRequestIn
from backend.credit.sources import Ask, RawQuote, SourceResult

Source = Callable[[LenderPoster], Awaitable[SourceResult]]


@dataclass(frozen=True)
class Plan:
    """One eligible provider: where it would settle and how to ask it."""

    provider_id: int
    source: str
    chain_id: int
    run: Source
    posts: bool = False  # a webhook lender, which may answer 202 and post later (a slot)


@dataclass(frozen=True)
class Market:
    """Per chain: prices, gas price and the borrower's acceptance nonce, read once."""

    prices: Prices
    gas_wei: int
    aggregator: str | None
    nonce: int


@dataclass(frozen=True)
class Prepared:
    """Everything the request learnt before the fan-out (phase 1, read-only)."""

    now: datetime
    wallet: str
    body: CreditRequestIn
    ask: Ask
    debt_chains: dict[int, AssetEntry]
    registry: AssetRegistry
    collateral: Collateral | None
    risk: RiskProfile
    expires_at: datetime
    outcomes: dict[int, SourceResult]  # decided without calling (ineligible, circuit open)
    plans: list[Plan]
    half_open: frozenset[int]  # a probe must be claimed before calling these
    breakers: Mapping[int, BreakerState]  # the breaker rows read in phase 1


@dataclass(frozen=True)
class PricedQuote:
    """One answer's normalisation, done as it arrived: the quote it was made from, and the
    result (or why it could not be priced)."""

    quote: RawQuote
    result: Normalised | PricingError


@dataclass(frozen=True)
class Gathered:
    """What the fan-out brought back (phase 2, no database transaction open)."""

    results: dict[int, SourceResult]
    markets: dict[int, Market]
    fanout_seconds: float
    # Quotes already normalised while slower lenders were still awaited (by provider id);
    # phase 3 prices the rest.
    priced: Mapping[int, PricedQuote] = field(default_factory=dict)
