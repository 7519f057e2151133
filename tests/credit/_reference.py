"""Independent reference computations for the pricing tests.

Written separately from backend.credit.pricing on purpose: plain bisection (no Newton, no shared
code) over the same equations, so a bug in the production solver cannot hide in its own check.
"""

from __future__ import annotations

from decimal import Decimal, localcontext


def bisect_rate(flows: list[tuple[Decimal, Decimal]], lo: str = "-0.99", hi: str = "10") -> Decimal:
    """The x in [lo, hi] with sum(amount * (1 + x)^-years) = 0, to 1e-20, by bisection.

    `flows` are (signed amount, years); drawdowns positive, repayments negative.
    """
    with localcontext() as ctx:
        ctx.prec = 50
        low, high = Decimal(lo), Decimal(hi)

        def npv(x: Decimal) -> Decimal:
            return sum((a * (1 + x) ** -t for a, t in flows), Decimal(0))

        assert npv(low) < 0 < npv(high) or npv(low) > 0 > npv(high)
        rising = npv(high) > 0
        while high - low > Decimal("1e-20"):
            mid = (low + high) / 2
            if (npv(mid) > 0) == rising:
                high = mid
            else:
                low = mid
        return (low + high) / 2
