"""API shapes of credit requests and quotes (tables are in models.py, never returned as is).

Units: `amount` fields are decimal strings of the asset's smallest unit (1000000 = 1 USDC);
rates are decimal strings of a yearly fraction ("0.12" = 12 %); terms are days and must be whole
months of 30 days, because quotes are priced on a monthly schedule (backend.credit.pricing).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend.credit.pricing.ranking import SecuredPreference
from backend.providers.rate_cards import MAX_AMOUNT

SYMBOL_PATTERN = r"^[A-Z0-9][A-Z0-9.]{1,15}$"
MAX_TERM_DAYS = 3600
DAYS_PER_MONTH = 30


def _positive_units(value: str) -> str:
    if not (value.isascii() and value.isdigit()) or int(value) == 0 or int(value) > MAX_AMOUNT:
        raise ValueError(
            "must be a positive integer in the asset's smallest unit, as a string of digits "
            '(e.g. "1000000" for 1 USDC); no sign, decimal point or exponent'
        )
    return str(int(value))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CollateralIn(_Strict):
    asset: str = Field(pattern=SYMBOL_PATTERN, description="Collateral symbol, e.g. WETH.")
    amount: str = Field(description="Smallest units of the collateral, as a digit string.")
    chain_id: int = Field(gt=0, description="Chain where the collateral is held.")

    _amount = field_validator("amount")(lambda cls, v: _positive_units(v))


class ConstraintsIn(_Strict):
    max_apr: Decimal | None = Field(
        default=None,
        description='Highest effective annual rate accepted, a fraction string ("0.15").',
    )
    secured: SecuredPreference = SecuredPreference.ANY

    @field_validator("max_apr", mode="before")
    @classmethod
    def _apr_string(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, str):
            raise ValueError('send max_apr as a decimal string such as "0.15" (15 %)')
        return value

    @field_validator("max_apr")
    @classmethod
    def _apr_range(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and (not value.is_finite() or not Decimal(0) < value <= 10):
            raise ValueError('max_apr must be a yearly fraction above 0 and at most 10 ("0.15")')
        return value


class CreditRequestIn(_Strict):
    """What a borrower asks for."""

    amount: str = Field(description="Principal in the asset's smallest unit, digit string.")
    asset: str = Field(pattern=SYMBOL_PATTERN, description="Symbol from the asset registry.")
    term_days: int = Field(ge=DAYS_PER_MONTH, le=MAX_TERM_DAYS)
    purpose: str = Field(min_length=1, max_length=200)
    collateral: CollateralIn | None = None
    chain_id: int | None = Field(default=None, gt=0, description="Preferred chain, if any.")
    constraints: ConstraintsIn = Field(default_factory=ConstraintsIn)

    _amount = field_validator("amount")(lambda cls, v: _positive_units(v))

    @field_validator("term_days")
    @classmethod
    def _whole_months(cls, value: int) -> int:
        if value % DAYS_PER_MONTH:
            lower = value - value % DAYS_PER_MONTH
            raise ValueError(
                f"term_days must be a whole number of 30-day months (quotes are priced "
                f"monthly); use {max(lower, DAYS_PER_MONTH)} or {lower + DAYS_PER_MONTH}"
            )
        return value

    @field_validator("purpose")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value.strip() or not value.isprintable():
            raise ValueError("purpose must be printable text, e.g. 'working capital'")
        return value.strip()


class RiskView(BaseModel):
    score: int
    reasons: list[str]


class QuoteView(BaseModel):
    id: str
    provider_id: int
    source: str
    chain_id: int
    rank: int | None
    excluded_reason: str | None = None
    expires_at: datetime
    quote: dict[str, Any] = Field(description="The QuoteV1 figures as in the receipt.")
    figures: dict[str, Any] = Field(description="Reg Z APR, health factor, rateBps...")
    typed_data: dict[str, Any] = Field(description="EIP-712 Acceptance to sign to accept.")


class NotQuotedView(BaseModel):
    provider_id: int
    outcome: str
    reason: str | None


class CreditRequestView(BaseModel):
    id: str
    wallet: str
    asset: str
    amount: str
    term_days: int
    purpose: str
    created_at: datetime
    risk: RiskView
    quotes: list[QuoteView] = Field(description="Ranked, best first.")
    excluded: list[QuoteView] = Field(description="Quotes that break the borrower's limits.")
    not_quoted: list[NotQuotedView]
    provider_timings_ms: dict[int, int] = Field(
        default_factory=dict,
        description="How long each provider that was asked took to answer or time out (ms), "
        "by provider id.",
    )
    receipt_id: str | None = Field(description="The quote_set receipt (none if no quote).")


class ProviderRequestView(BaseModel):
    """A credit request as a provider sees it: no other provider's outcome or quote."""

    id: str
    asset: str
    amount: str
    term_days: int
    chain_id: int | None
    collateral: dict[str, Any] | None
    risk_score: int
    outcome: str
    reason: str | None
    created_at: datetime


class ProviderQuoteView(BaseModel):
    id: str
    request_id: str
    rank: int | None
    expires_at: datetime
    quote: dict[str, Any]


class DefiPoolIn(BaseModel):
    """The lending pool a DeFi provider stands for."""

    model_config = ConfigDict(extra="forbid")

    chain_id: int = Field(gt=0, le=2**63 - 1, description="A chain credagg is configured for.")
    pool: str = Field(
        pattern=r"^0x[0-9a-fA-F]{40}$", description="The pool contract's address (0x + 40 hex)."
    )
    asset: str = Field(
        pattern=SYMBOL_PATTERN, description="The symbol it lends, from the asset registry."
    )


class RateModelOut(BaseModel):
    """The pool's kinked rate model as read on-chain (rays: 1e27 = 100 %)."""

    base_rate: str
    slope1: str
    slope2: str
    optimal_utilization: str


class DefiPoolOut(BaseModel):
    chain_id: int
    pool: str
    asset: str
    checked_at_block: int | None = Field(
        default=None, description="The block the pool was verified at (set on PUT)."
    )
    rate_model: RateModelOut | None = None
    total_supplied: str | None = None
    total_borrowed: str | None = None
