"""Ranking normalised quotes under the borrower's constraints.

The order is by (effective annual rate, total cost of credit, quote id): cheapest yearly rate
first, then the smaller total cost, and the id only so that equal quotes still come in one fixed
order (a total order: the same input always ranks the same). Quotes that break a constraint are
returned apart with the reason, so the API can tell the borrower why a provider is missing.

`max_apr` is compared with the effective annual rate (the APRC), the stricter of the figures,
since that is the one that includes the fees.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class SecuredPreference(StrEnum):
    """Which kinds of credit the borrower will consider."""

    ANY = "any"
    SECURED_ONLY = "secured_only"
    UNSECURED_ONLY = "unsecured_only"


@dataclass(frozen=True)
class NormalisedQuote:
    """The comparable figures of one quote (all amounts in the requested asset's units)."""

    quote_id: str
    provider: str
    effective_annual_rate: Decimal
    total_cost: int
    nominal_apr: Decimal
    secured: bool = False
    ltv: Decimal | None = None

    @property
    def rank_key(self) -> tuple[Decimal, int, str]:
        """(effective annual rate, total cost, id)."""
        return (self.effective_annual_rate, self.total_cost, self.quote_id)


@dataclass(frozen=True)
class BorrowerConstraints:
    """Limits a quote must meet; None means no limit."""

    max_apr: Decimal | None = None
    max_total_cost: int | None = None
    preference: SecuredPreference = SecuredPreference.ANY
    max_ltv: Decimal | None = None


@dataclass(frozen=True)
class Excluded:
    """A quote left out of the ranking, and why."""

    quote: NormalisedQuote
    reason: str


@dataclass(frozen=True)
class Ranking:
    """Eligible quotes best first, and the excluded ones with their reasons."""

    ranked: tuple[NormalisedQuote, ...]
    excluded: tuple[Excluded, ...]


def violation(quote: NormalisedQuote, limits: BorrowerConstraints) -> str | None:
    """Why `quote` breaks `limits`, or None if it meets them."""
    if limits.max_apr is not None and quote.effective_annual_rate > limits.max_apr:
        return (
            f"effective annual rate {quote.effective_annual_rate} exceeds max_apr {limits.max_apr}"
        )
    if limits.max_total_cost is not None and quote.total_cost > limits.max_total_cost:
        return f"total cost {quote.total_cost} exceeds max_total_cost {limits.max_total_cost}"
    if limits.preference is SecuredPreference.SECURED_ONLY and not quote.secured:
        return "unsecured, and the borrower asked for secured credit only"
    if limits.preference is SecuredPreference.UNSECURED_ONLY and quote.secured:
        return "secured, and the borrower asked for unsecured credit only"
    if limits.max_ltv is not None and quote.secured:
        if quote.ltv is None:
            return "secured but without an LTV to check against max_ltv"
        if quote.ltv > limits.max_ltv:
            return f"LTV {quote.ltv} exceeds max_ltv {limits.max_ltv}"
    return None


def rank_quotes(
    quotes: Iterable[NormalisedQuote], limits: BorrowerConstraints | None = None
) -> Ranking:
    """Filter by `limits`, then sort by `NormalisedQuote.rank_key`."""
    limits = limits or BorrowerConstraints()
    ranked: list[NormalisedQuote] = []
    excluded: list[Excluded] = []
    for quote in quotes:
        reason = violation(quote, limits)
        if reason is None:
            ranked.append(quote)
        else:
            excluded.append(Excluded(quote, reason))
    ranked.sort(key=lambda quote: quote.rank_key)
    return Ranking(tuple(ranked), tuple(excluded))
