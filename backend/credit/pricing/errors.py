"""Pricing errors: a quote or loan that cannot be priced as given is a 422 with a fix-it hint.

Pricing runs on provider- and user-supplied figures, so a nonsensical input (negative amount,
zero term, a fee larger than the loan) must surface as a client error naming the field, never
as a 500 from deep inside the arithmetic.
"""

from __future__ import annotations

from backend.exceptions import Unprocessable


class PricingError(Unprocessable):
    """Root of the pricing errors: the figures cannot be priced."""

    code = "pricing_error"


class InvalidLoanTerms(PricingError):
    """The loan's terms are inconsistent or out of range."""

    code = "invalid_loan_terms"


class NoRateSolution(PricingError):
    """The cash flows admit no annual rate (e.g. nothing is ever repaid)."""

    code = "no_rate_solution"


class InvalidCollateral(PricingError):
    """The collateral figures cannot give an LTV or health factor."""

    code = "invalid_collateral"


class InsufficientPoolLiquidity(PricingError):
    """The DeFi pool has less idle liquidity than the amount asked for."""

    code = "insufficient_pool_liquidity"
