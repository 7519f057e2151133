"""DeFi pools: the borrow rate a new borrower pays, computed exactly as the pool does on-chain.

`hardhat_fixtures/MockLendingPool.sol` (our devnet pools) uses an Aave-v3-style kinked model with
every figure a ray (1e27 = 100 %, annual) and each division rounding down (OpenZeppelin
`Math.mulDiv`):

    U = borrowed * RAY / supplied  (0 when supplied == 0)
    rate(U) = base + slope1 * U / Uopt                           if U <= Uopt
            = base + slope1 + slope2 * (U - Uopt) / (RAY - Uopt)  otherwise

A quote uses the utilisation AFTER this borrow: U' = (borrows + amount) / (cash + borrows), where
the pool's `totalSupplied` is cash + borrows; this is the contract's `borrowRateAfter(amount)`,
and, like it, we refuse an amount above the idle liquidity. Integer arithmetic reproduces the
contract's number to the last wei of ray.

Rate conventions: the ray rate is a nominal annual rate (APR = rate / RAY, exact). The mock pool
does not accrue; a pool that accrues per second (Aave: SECONDS_PER_YEAR = 365 days) or per block
compounds it, so its effective annual yield is APY = (1 + APR/n)^n - 1 with n the accrual steps
in a year (`apy`), which is the figure comparable with an APRC.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext

from backend.credit.pricing.errors import InsufficientPoolLiquidity, InvalidLoanTerms
from backend.credit.pricing.solver import PRECISION

RAY = 10**27
SECONDS_PER_YEAR = 365 * 24 * 60 * 60


@dataclass(frozen=True)
class KinkedRateModel:
    """The pool's immutable parameters, each a ray."""

    base_rate: int
    slope1: int
    slope2: int
    optimal_utilization: int

    def __post_init__(self) -> None:
        if (
            not 0 < self.optimal_utilization < RAY
            or min(self.base_rate, self.slope1, self.slope2) < 0
        ):
            raise InvalidLoanTerms(
                f"Invalid kinked rate model {self}.",
                hint="Rates are non-negative rays and 0 < optimal_utilization < 1e27.",
            )

    def rate_at(self, utilization: int) -> int:
        """`rateAt(u)` of the contract (ray, annual), floor divisions included."""
        opt = self.optimal_utilization
        if utilization <= opt:
            return self.base_rate + self.slope1 * utilization // opt
        return self.base_rate + self.slope1 + self.slope2 * (utilization - opt) // (RAY - opt)


@dataclass(frozen=True)
class PoolState:
    """The pool's books: `total_supplied` = cash + borrows, `total_borrowed` = borrows."""

    total_supplied: int
    total_borrowed: int

    @property
    def cash(self) -> int:
        """Idle liquidity (`availableLiquidity()`)."""
        return self.total_supplied - self.total_borrowed


def utilization(borrowed: int, supplied: int) -> int:
    """The contract's `_utilization`: borrowed * RAY / supplied, floor, 0 if nothing supplied."""
    return 0 if supplied == 0 else borrowed * RAY // supplied


def utilization_after(pool: PoolState, amount: int) -> int:
    """U after borrowing `amount`: (borrows + amount) / (cash + borrows), as a ray."""
    if amount <= 0:
        raise InvalidLoanTerms(
            f"Borrow amount must be > 0 smallest units, got {amount}.",
            hint="Give the amount in the asset's smallest unit.",
        )
    if amount > pool.cash:
        raise InsufficientPoolLiquidity(
            f"The pool has {pool.cash} units of idle liquidity; {amount} were requested.",
            hint="Borrow at most the pool's available liquidity, or choose another pool.",
        )
    return utilization(pool.total_borrowed + amount, pool.total_supplied)


def borrow_rate_after(model: KinkedRateModel, pool: PoolState, amount: int) -> int:
    """The contract's `borrowRateAfter(amount)`: the ray rate this borrower would pay."""
    return model.rate_at(utilization_after(pool, amount))


def ray_to_decimal(value: int) -> Decimal:
    """A ray as an exact Decimal fraction (1e27 -> 1)."""
    return Decimal(value).scaleb(-27)


def apy(apr: Decimal, compounding_per_year: int = SECONDS_PER_YEAR) -> Decimal:
    """(1 + APR/n)^n - 1: the effective annual rate of an APR accrued n times a year."""
    if compounding_per_year <= 0:
        raise InvalidLoanTerms(
            f"compounding_per_year must be > 0, got {compounding_per_year}.",
            hint="Use SECONDS_PER_YEAR for per-second accrual or the chain's blocks per year.",
        )
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return (1 + apr / compounding_per_year) ** compounding_per_year - 1
