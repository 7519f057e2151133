"""A raw offer -> every comparable figure, the QuoteV1 receipt entry and the EIP-712 terms.

Conventions: every quote is priced as a bullet loan (principal + simple interest at maturity,
which is how CreditAggregator accrues: simple interest at `rateBps` on a 365-day year) over
`term_days / 30` whole months (`pricing.schedule` is monthly), with the origination fee
deducted at drawdown and the estimated gas of `openLoan` charged at drawdown too (converted to
the debt asset through the price feeds of the asset registry; 0 when a feed is missing, and
`gas_estimate` in wei is reported either way). The ranking rate is the EU APRC (IRR of the cash
flows); the Reg Z APR is reported beside it. A secured quote adds LTV, health factor and
liquidation price (debt asset per whole collateral token) from the feeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from eth_utils import keccak

from backend.credit.assets import AssetEntry
from backend.credit.pricing.collateral import CollateralMetrics, TokenAmount, collateral_metrics
from backend.credit.pricing.ranking import NormalisedQuote
from backend.credit.pricing.schedule import LoanTerms, Repayment
from backend.credit.sources import RawQuote
from backend.receipts.canonical import canonical_json
from backend.receipts.kinds import QuoteV1
from backend.receipts.service import format_issued_at
from chain_adapters.acceptance import acceptance_typed_data
from tests.credit._pricing_reference.quote import price_loan

DAY_SECONDS = 86_400
DAYS_PER_MONTH = 30
ZERO_ADDRESS = "0x" + "00" * 20
#: Rays have 27 decimals: every on-chain rate is exact at this precision.
RATE_DIGITS = Decimal("1e-27")


def decimal_string(value: Decimal) -> str:
    """A non-negative Decimal in the receipts' spelling: plain digits, no exponent."""
    with localcontext() as ctx:
        ctx.prec = 60
        return format(value.quantize(RATE_DIGITS, rounding=ROUND_HALF_UP).normalize(), "f")


def asset_ref(entry: AssetEntry) -> dict[str, Any]:
    return {
        "chain_id": entry.chain_id,
        "address": entry.address.lower(),
        "symbol": entry.symbol,
        "decimals": entry.decimals,
    }


@dataclass(frozen=True)
class Prices:
    """USD per whole token, from the feeds (None where no feed is configured)."""

    debt: Decimal | None = None
    collateral: Decimal | None = None
    native: Decimal | None = None


@dataclass(frozen=True)
class Collateral:
    entry: AssetEntry
    amount: int


@dataclass(frozen=True)
class Normalised:
    document: dict[str, Any]  # QuoteV1
    figures: dict[str, Any]
    ranking: NormalisedQuote
    typed_data: dict[str, Any]


def gas_in_debt_units(gas_wei: int, debt: AssetEntry, prices: Prices) -> int:
    if prices.native is None or not prices.debt:
        return 0
    with localcontext() as ctx:
        ctx.prec = 60
        value = Decimal(gas_wei).scaleb(-18) * prices.native / prices.debt
        return int(value.scaleb(debt.decimals).to_integral_value(rounding=ROUND_HALF_UP))


def _metrics(
    amount: int, debt: AssetEntry, collateral: Collateral, prices: Prices
) -> CollateralMetrics | None:
    threshold = collateral.entry.liquidation_threshold
    if prices.debt is None or prices.collateral is None or threshold is None:
        return None
    return collateral_metrics(
        TokenAmount(amount, debt.decimals, prices.debt),
        TokenAmount(collateral.amount, collateral.entry.decimals, prices.collateral),
        threshold,
    )


def normalise(
    raw: RawQuote,
    *,
    quote_id: str,
    provider_id: int,
    source: str,
    amount: int,
    term_days: int,
    debt: AssetEntry,
    collateral: Collateral | None,
    prices: Prices,
    gas_wei: int,
    start: date,
    expires_at: datetime,
    borrower: str,
    aggregator: str | None,
    nonce: int,
) -> Normalised:
    gas_units = gas_in_debt_units(gas_wei, debt, prices)
    pricing = price_loan(
        LoanTerms(
            principal=amount,
            nominal_rate=raw.nominal_apr,
            term_months=term_days // DAYS_PER_MONTH,
            start=start,
            repayment=Repayment.BULLET,
            origination_fee=raw.origination_fee,
            gas_cost=gas_units,
        )
    )
    metrics = _metrics(amount, debt, collateral, prices) if collateral else None
    document: dict[str, Any] = {
        "quote_id": quote_id,
        "provider": f"provider:{provider_id}",
        "source": source,
        "debt_asset": asset_ref(debt),
        "principal": str(amount),
        "term_seconds": term_days * DAY_SECONDS,
        "nominal_apr": decimal_string(raw.nominal_apr),
        "effective_annual_rate": decimal_string(pricing.effective_annual_rate),
        "day_count": "act/365",
        "fees": str(raw.origination_fee),
        "gas_estimate": str(gas_wei),
        "total_cost": str(pricing.total_cost),
        "expires_at": format_issued_at(expires_at),
    }
    if collateral is not None:
        document["collateral_asset"] = asset_ref(collateral.entry)
        document["collateral_amount"] = str(collateral.amount)
    if metrics is not None and prices.debt:
        document["ltv"] = decimal_string(metrics.ltv)
        document["liquidation_price"] = decimal_string(metrics.liquidation_price / prices.debt)
    QuoteV1.model_validate(document)  # the receipt will take it: fail here, not at issuance
    rate_bps = int((raw.nominal_apr * 10_000).to_integral_value(rounding=ROUND_HALF_UP))
    terms = {
        "quoteHash": "0x" + keccak(canonical_json(document)).hex(),
        "provider": raw.provider_address,
        "asset": debt.address.lower(),
        "principal": amount,
        "rateBps": rate_bps,
        "termSeconds": term_days * DAY_SECONDS,
        "collateralAsset": collateral.entry.address.lower() if collateral else ZERO_ADDRESS,
        "collateralAmount": collateral.amount if collateral else 0,
        "nonce": nonce,
    }
    typed_data = acceptance_typed_data(
        chain_id=debt.chain_id,
        aggregator=aggregator or ZERO_ADDRESS,
        terms=terms,
        borrower=borrower,
        deadline=int(expires_at.timestamp()),
    )
    figures: dict[str, Any] = {
        "regz_apr": decimal_string(pricing.regz.rate),
        "aprc": decimal_string(pricing.aprc.rate),
        "gas_cost_in_asset": str(gas_units),
        "rate_bps": rate_bps,
        "rate_ray": str(raw.rate_ray) if raw.rate_ray is not None else None,
        "health_factor": decimal_string(metrics.health_factor) if metrics else None,
        "aggregator_deployed": aggregator is not None,
    }
    ranking = NormalisedQuote(
        quote_id=quote_id,
        provider=f"provider:{provider_id}",
        effective_annual_rate=pricing.effective_annual_rate,
        total_cost=pricing.total_cost,
        nominal_apr=raw.nominal_apr,
        secured=collateral is not None,
        ltv=metrics.ltv if metrics else None,
    )
    return Normalised(document, figures, ranking, typed_data)
