"""Secured quotes: loan-to-value, health factor at origination, liquidation price.

Amounts arrive in smallest units with their token's decimals; prices are Decimal values of one
whole token in a common quote currency (e.g. USD), such as a Chainlink answer / 10^decimals
(`price_from_feed`). Definitions (Aave v3 style):

    value(x)          = amount / 10^decimals * price
    LTV               = value(debt) / value(collateral)
    health factor     = value(collateral) * liquidation_threshold / value(debt)
    liquidation price = value(debt) / (collateral amount in whole tokens * liquidation_threshold)

so LTV x HF = liquidation_threshold and liquidation price = collateral price / HF, identities the
tests check. Results are unrounded Decimal (40 significant digits).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext

from backend.credit.pricing.errors import InvalidCollateral
from backend.credit.pricing.solver import PRECISION

MAX_DECIMALS = 36


@dataclass(frozen=True)
class TokenAmount:
    """`amount` smallest units of a token with `decimals`, worth `price` per whole token."""

    amount: int
    decimals: int
    price: Decimal

    @property
    def value(self) -> Decimal:
        """The amount's value in the quote currency."""
        with localcontext() as ctx:
            ctx.prec = PRECISION
            return self.whole * self.price

    @property
    def whole(self) -> Decimal:
        """The amount in whole tokens."""
        with localcontext() as ctx:
            ctx.prec = PRECISION
            return Decimal(self.amount).scaleb(-self.decimals)


@dataclass(frozen=True)
class CollateralMetrics:
    """A secured position at origination."""

    ltv: Decimal
    health_factor: Decimal
    liquidation_price: Decimal
    liquidation_threshold: Decimal


def price_from_feed(answer: int, decimals: int) -> Decimal:
    """A price feed's integer answer as a Decimal price (answer / 10^decimals)."""
    if answer <= 0 or not 0 <= decimals <= MAX_DECIMALS:
        raise InvalidCollateral(
            f"Price feed answer {answer} with {decimals} decimals is not a usable price.",
            hint="The feed must report a positive answer; check the feed is live.",
        )
    return Decimal(answer).scaleb(-decimals)


def _check(name: str, token: TokenAmount) -> None:
    if token.amount <= 0 or token.price <= 0 or not 0 <= token.decimals <= MAX_DECIMALS:
        raise InvalidCollateral(
            f"The {name} needs a positive amount and price and 0..{MAX_DECIMALS} decimals, "
            f"got amount={token.amount}, decimals={token.decimals}, price={token.price}.",
            hint=f"Give the {name} in the token's smallest unit with its decimals and a price.",
        )


def collateral_metrics(
    debt: TokenAmount, collateral: TokenAmount, liquidation_threshold: Decimal
) -> CollateralMetrics:
    """LTV, health factor and liquidation price of `debt` against `collateral`."""
    _check("debt", debt)
    _check("collateral", collateral)
    if not 0 < liquidation_threshold <= 1:
        raise InvalidCollateral(
            f"Liquidation threshold {liquidation_threshold} is outside (0, 1].",
            hint="Give it as a fraction, e.g. 0.825 for 82.5 % (8250 bps / 10000).",
        )
    with localcontext() as ctx:
        ctx.prec = PRECISION
        debt_value = debt.value
        collateral_value = collateral.value
        return CollateralMetrics(
            ltv=debt_value / collateral_value,
            health_factor=collateral_value * liquidation_threshold / debt_value,
            liquidation_price=debt_value / (collateral.whole * liquidation_threshold),
            liquidation_threshold=liquidation_threshold,
        )
