"""A bracketed Newton root finder on Decimal, for the rate equations.

Both the EU APRC and the Reg Z actuarial equation reduce to "find the rate x at which the signed
present value of the cash flows is zero". For the schedules we price (every drawdown before every
repayment) that present value is strictly increasing in x on (-1, inf), so the root is unique; we
bracket it, then take Newton steps and fall back to bisection whenever a step would leave the
bracket (the safeguarded Newton of Numerical Recipes' `rtsafe`). Convergence: the bracket width
or the Newton step falls below `RATE_TOLERANCE` (1e-12, i.e. 1e-10 of a percentage point).

All arithmetic runs in a local Decimal context of `PRECISION` significant digits with
ROUND_HALF_EVEN; no float is ever involved.

Speed without changing a digit: the rate figures are published to 27 decimals and hashed into the
quote the borrower signs, and the result of a Newton iteration stopped at 1e-12 depends on its
whole path (the last step leaves an error near 1e-24), so the path itself must stay exactly as it
is: same start, same probes, same steps. What can go is repeated work. Every solve evaluates the
present value at the same points first (0, 1, 4, ... while bracketing, then the 0.1 start), so the
equations cache the x-only parts of those evaluations (`is_probe`, `context_key`), and bracketing
asks only for the value (`PresentValueOnly`), not the slope it never reads.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, Inexact, Rounded, getcontext, localcontext

from backend.credit.pricing.errors import NoRateSolution

PRECISION = 40
RATE_TOLERANCE = Decimal("1e-12")
MAX_ITERATIONS = 400
# A rate above this (1e6 = 100,000,000 % a year) is not a loan any ranking should show.
MAX_RATE = Decimal(10) ** 6
MIN_RATE = Decimal("-0.999999999")

PresentValue = Callable[[Decimal], tuple[Decimal, Decimal]]
"""x -> (f(x), f'(x)) with f increasing in x."""
PresentValueOnly = Callable[[Decimal], Decimal]
"""x -> f(x), computed exactly as the first item of the matching `PresentValue`."""

START = Decimal("0.1")


def _probe_points(upper: Decimal) -> frozenset[str]:
    points = [Decimal(0), Decimal(1), MIN_RATE, START]
    hi = Decimal(1)
    while hi <= upper:
        hi = hi * 4
        points.append(hi)
    return frozenset(str(point) for point in points)


#: The spelling of every x at which `solve_increasing` may evaluate whatever the cash flows are:
#: the bracket's probes and the Newton start. Results at these points repeat across quotes.
PROBES = _probe_points(MAX_RATE)


def is_probe(x: Decimal) -> bool:
    """Whether `x` is one of the fixed evaluation points (compared by spelling, not value)."""
    return str(x) in PROBES


def context_key() -> tuple[int, str, int, int, int, bool, bool]:
    """What of the current Decimal context can change a cached result: a cache key part.

    Precision and rounding change digits; the exponent limits and clamp change over- and
    underflow; trapping Inexact or Rounded would make the uncached operation raise.
    """
    ctx = getcontext()
    return (
        ctx.prec,
        ctx.rounding,
        ctx.Emax,
        ctx.Emin,
        ctx.clamp,
        bool(ctx.traps[Inexact]),
        bool(ctx.traps[Rounded]),
    )


def solve_increasing(
    pv: PresentValue,
    *,
    lower: Decimal = MIN_RATE,
    upper: Decimal = MAX_RATE,
    value_only: PresentValueOnly | None = None,
) -> Decimal:
    """The root of the increasing function `pv` in [lower, upper].

    `value_only`, when given, must return exactly `pv(x)[0]`; bracketing uses it alone.

    Raises NoRateSolution when `pv` does not change sign on the bracket: the cash flows then
    have no rate (nothing is repaid, or they are not a loan).
    """
    with localcontext() as ctx:
        ctx.prec = PRECISION
        lo, hi = _bracket(value_only or (lambda x: pv(x)[0]), lower, upper)
        x = _start(lo, hi)
        for _ in range(MAX_ITERATIONS):
            value, slope = pv(x)
            if value == 0:
                return +x
            if value < 0:
                lo = x
            else:
                hi = x
            candidate = x - value / slope if slope > 0 else lo - 1
            if not lo < candidate < hi:
                candidate = (lo + hi) / 2
            step = x - candidate
            x = candidate
            if abs(step) < RATE_TOLERANCE or hi - lo < RATE_TOLERANCE:
                return +x
    raise NoRateSolution(  # pragma: no cover - the bracket halves at worst; 400 steps suffice
        "The rate equation did not converge.",
        hint="Check that the repayments are finite and dated after the drawdown.",
    )


def _start(lo: Decimal, hi: Decimal) -> Decimal:
    # Start from a plausible consumer rate when it lies inside the bracket: Newton from there
    # converges in a handful of steps for any ordinary loan.
    return START if lo < START < hi else (lo + hi) / 2


def _bracket(pv: PresentValueOnly, lower: Decimal, upper: Decimal) -> tuple[Decimal, Decimal]:
    """Narrow [lower, upper] to an interval [lo, hi] with pv(lo) <= 0 <= pv(hi)."""
    at_zero = pv(Decimal(0))
    if at_zero == 0:
        return Decimal(0), Decimal(0)
    if at_zero < 0:
        lo, hi = Decimal(0), Decimal(1)
        while pv(hi) < 0:
            lo, hi = hi, hi * 4
            if hi > upper:
                raise NoRateSolution(
                    f"The cash flows imply an annual rate above {upper}.",
                    hint="Check the repayment amounts and dates; they are far above the advance.",
                )
        return lo, hi
    if pv(lower) > 0:
        raise NoRateSolution(
            "The repayments are worth less than the drawdowns at any rate above -100%.",
            hint="Check that the schedule repays the credit and that fees have the right sign.",
        )
    return lower, Decimal(0)
