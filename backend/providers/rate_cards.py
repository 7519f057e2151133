"""Rate cards: the pricing rules of a traditional lender that has no quote endpoint.

A card says, per asset, what amounts the lender lends (in the asset's smallest unit); the APR for
each credit-score band; the origination fee; the terms it offers; the KYC tier it requires; and
which collateral it takes up to what loan-to-value. It is validated here in full, so the
credit pipeline can price from a stored card without re-checking it.

Conventions: amounts are integers in the asset's smallest unit (sent as JSON integers or digit
strings, returned as strings so no JSON parser rounds them); rates and LTVs are `Decimal`
fractions sent as *strings* ("0.1250" is 12.5 %), never floats; APR is nominal per year on an
actual/365 day count; scores are FICO-style 300-850, bands inclusive at both ends.

Every rule error names the offending field (pydantic puts it in `errors[].field`) and says how to
fix it.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

MIN_SCORE = 300
MAX_SCORE = 850
MAX_APR = Decimal("10")  # 1000 % a year: anything above is a typo (a percentage sent as a fraction)
MAX_TERM_DAYS = 3650
MAX_KYC_TIER = 3
#: Smallest units fit in uint256 on-chain.
MAX_AMOUNT = 2**256 - 1


def _decimal_string(value: Any) -> Any:
    if isinstance(value, Decimal):
        return value
    if not isinstance(value, str):
        raise ValueError(
            f'send it as a decimal string such as "0.1250", not {type(value).__name__} '
            "(a JSON number may lose precision)"
        )
    try:
        parsed = Decimal(value.strip())
    except InvalidOperation:
        raise ValueError(f'{value!r} is not a decimal number; send e.g. "0.1250"') from None
    if not parsed.is_finite():
        raise ValueError(f'{value!r} is not a finite number; send e.g. "0.1250"')
    return parsed


def _smallest_units(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("send an integer amount in the asset's smallest unit, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise ValueError(
        "send an integer amount in the asset's smallest unit (e.g. 1000000 for 1 USDC), "
        "as a JSON integer or a string of digits"
    )


#: A rate or ratio: a Decimal in, a string out.
DecimalStr = Annotated[
    Decimal, BeforeValidator(_decimal_string), PlainSerializer(str, return_type=str)
]
#: An amount in an asset's smallest unit: an int in, a digit string out.
Amount = Annotated[
    int,
    BeforeValidator(_smallest_units),
    Field(ge=0, le=MAX_AMOUNT),
    PlainSerializer(str, return_type=str),
]
Asset = Annotated[
    str,
    Field(
        pattern=r"^[A-Z0-9][A-Z0-9.]{1,15}$",
        description="Asset symbol in capitals, e.g. USDC, WETH.",
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AmountRange(_Strict):
    """The amounts lent in one asset, inclusive, in its smallest unit."""

    asset: Asset
    min_amount: Amount
    max_amount: Amount

    @model_validator(mode="after")
    def _ordered(self) -> AmountRange:
        if self.min_amount == 0:
            raise ValueError("min_amount must be positive: a loan of 0 is no loan; use at least 1")
        if self.max_amount < self.min_amount:
            raise ValueError(
                f"max_amount ({self.max_amount}) is below min_amount ({self.min_amount}); "
                "swap them or raise max_amount"
            )
        return self


class AprBand(_Strict):
    """The nominal APR for scores min_score..max_score (inclusive)."""

    min_score: int = Field(ge=MIN_SCORE, le=MAX_SCORE)
    max_score: int = Field(ge=MIN_SCORE, le=MAX_SCORE)
    apr: DecimalStr

    @field_validator("apr")
    @classmethod
    def _apr_range(cls, value: Decimal) -> Decimal:
        if not Decimal(0) <= value <= MAX_APR:
            raise ValueError(
                f"apr {value} is outside 0..{MAX_APR}; it is a yearly fraction "
                '("0.125" means 12.5 %), not a percentage'
            )
        return value

    @model_validator(mode="after")
    def _ordered(self) -> AprBand:
        if self.max_score < self.min_score:
            raise ValueError(
                f"max_score ({self.max_score}) is below min_score ({self.min_score}); swap them"
            )
        return self


class OriginationFee(_Strict):
    """A fee taken at origination: `bps` of the principal plus a `fixed` amount per asset."""

    bps: int = Field(default=0, ge=0, le=10_000, description="Basis points of the principal.")
    fixed: dict[Asset, Amount] = Field(
        default_factory=dict, description="Per asset, in its smallest unit."
    )


class CollateralRule(_Strict):
    """An accepted collateral asset and the highest loan-to-value lent against it."""

    asset: Asset
    max_ltv: DecimalStr

    @field_validator("max_ltv")
    @classmethod
    def _ltv_range(cls, value: Decimal) -> Decimal:
        if not Decimal(0) < value <= Decimal(1):
            raise ValueError(
                f'max_ltv {value} must be above 0 and at most 1 (e.g. "0.75" for 75 %)'
            )
        return value


class RateCard(_Strict):
    """A complete, validated rate card (see the module docstring for units)."""

    amounts: list[AmountRange] = Field(min_length=1, max_length=64)
    apr_bands: list[AprBand] = Field(min_length=1, max_length=551)
    origination_fee: OriginationFee = Field(default_factory=OriginationFee)
    terms_days: list[Annotated[int, Field(ge=1, le=MAX_TERM_DAYS)]] = Field(
        min_length=1, max_length=64
    )
    required_kyc_tier: int = Field(ge=0, le=MAX_KYC_TIER)
    collateral: list[CollateralRule] = Field(default_factory=list, max_length=64)

    @field_validator("amounts")
    @classmethod
    def _one_range_per_asset(cls, value: list[AmountRange]) -> list[AmountRange]:
        seen: set[str] = set()
        for index, rule in enumerate(value):
            if rule.asset in seen:
                raise ValueError(
                    f"amounts[{index}]: asset {rule.asset} appears twice; give each asset one range"
                )
            seen.add(rule.asset)
        return value

    @field_validator("apr_bands")
    @classmethod
    def _contiguous_bands(cls, value: list[AprBand]) -> list[AprBand]:
        """Bands sorted by score must tile [first min_score, 850] with no gap and no overlap."""
        bands = sorted(value, key=lambda band: band.min_score)
        for index in range(1, len(bands)):
            previous, band = bands[index - 1], bands[index]
            if band.min_score <= previous.max_score:
                raise ValueError(
                    f"band {band.min_score}-{band.max_score} overlaps band "
                    f"{previous.min_score}-{previous.max_score}; start it at "
                    f"{previous.max_score + 1} or end the other at {band.min_score - 1}"
                )
            if band.min_score != previous.max_score + 1:
                raise ValueError(
                    f"scores {previous.max_score + 1}-{band.min_score - 1} fall in no band; "
                    f"start band {band.min_score}-{band.max_score} at {previous.max_score + 1} "
                    "or add a band for them"
                )
        if bands[-1].max_score != MAX_SCORE:
            raise ValueError(
                f"the highest band ends at {bands[-1].max_score}; it must end at {MAX_SCORE} "
                "so no better score is refused (extend it or add a band)"
            )
        return bands

    @field_validator("terms_days")
    @classmethod
    def _distinct_terms(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("a term is listed twice; list each term in days once")
        return sorted(value)

    @field_validator("collateral")
    @classmethod
    def _one_rule_per_collateral(cls, value: list[CollateralRule]) -> list[CollateralRule]:
        seen: set[str] = set()
        for index, rule in enumerate(value):
            if rule.asset in seen:
                raise ValueError(
                    f"collateral[{index}]: asset {rule.asset} appears twice; "
                    "give each collateral asset one max_ltv"
                )
            seen.add(rule.asset)
        return value

    @model_validator(mode="after")
    def _fees_in_lent_assets(self) -> RateCard:
        lent = {rule.asset for rule in self.amounts}
        for asset in self.origination_fee.fixed:
            if asset not in lent:
                raise ValueError(
                    f"origination_fee.fixed names {asset}, which the card does not lend; "
                    f"use one of {sorted(lent)} or add an amounts range for {asset}"
                )
        return self

    # What the credit pipeline asks of a card -------------------------------------------------

    def apr_for_score(self, score: int) -> Decimal | None:
        """The APR for `score`, or None when the score is below the card's lowest band."""
        for band in self.apr_bands:
            if band.min_score <= score <= band.max_score:
                return band.apr
        return None

    def amount_range(self, asset: str) -> AmountRange | None:
        return next((rule for rule in self.amounts if rule.asset == asset), None)

    def max_ltv(self, asset: str) -> Decimal | None:
        return next((rule.max_ltv for rule in self.collateral if rule.asset == asset), None)

    def document(self) -> dict[str, Any]:
        """The JSON form stored in `provider_rate_cards.document` (and returned by the API)."""
        return self.model_dump(mode="json")
