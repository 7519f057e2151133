"""`base ** exponent` for a fractional exponent: the very Decimal libmpdec returns, sooner.

Why: the EU APRC discounts by (1 + x) ** -years, and for a term that is not whole years that is a
fractional power, ~100 us each in libmpdec: most of a quote's CPU. The result must not change by a
digit (see solver.py), so this does not approximate the power, it reproduces libmpdec's algorithm
and speeds up its slow step with a proof that the value is the same.

libmpdec (`_mpd_qpow_real` in mpdecimal.c, Python's C `decimal`) computes, for a finite base > 0,
base != 1 and a non-integer exponent e whose power cannot over- or underflow:

    w = max(digits(base), prec) + 4 + 19          (19 = MPD_EXPDIGITS on 64-bit builds)
    r = exp_w(mul_w(ln_w(base), e))               (each rounded half-even to w digits, and ln and
                                                   exp correctly rounded, which Python documents)
    result = r rounded to the caller's context    (a result equal to 1 gets a special spelling)

`ln_w` is ~3/4 of that time. We compute ln(base) another way, to w + 12 digits with a proven error
bound: ln(base) = ln(c) + 2 atanh(z), z = (base - c) / (base + c), c the base rounded to 3 decimals
(ln(c) cached), the atanh series summed until its tail is below the bound. If every value within
the bound rounds to the same w-digit number, that number is the correctly rounded ln_w(base), i.e.
exactly libmpdec's; otherwise (odds near 1e-6) we ask libmpdec. The rest (mul, exp, the final
rounding) is libmpdec's own code path. Anything outside the range this was checked on
(0.5 <= base <= 16, |e| <= 100, at most 60 digits, ordinary exponent limits, Inexact not trapped,
a result that is not 1) goes to `base ** exponent` itself.

Tested: tests/credit/test_pricing_powers.py (hypothesis, many contexts), and the whole pricing
against a frozen copy of the old code (test_pricing_equivalence.py).
"""

from __future__ import annotations

import _decimal
import decimal
import math
from decimal import (
    MAX_EMAX,
    MIN_EMIN,
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    Inexact,
    Rounded,
    getcontext,
)
from functools import lru_cache

#: libmpdec versions whose `_mpd_qpow_real` was read and checked against this module (CPython
#: 3.11's bundled 2.5.1). Another version, or the pure-Python decimal, gets `**` unchanged until
#: test_pricing_powers.py has passed on it and the version is added here.
VERIFIED_LIBMPDEC = frozenset({"2.5.1"})
FAST_PATH = (
    decimal.Decimal is _decimal.Decimal and decimal.__libmpdec_version__ in VERIFIED_LIBMPDEC
)

#: libmpdec's MPD_EXPDIGITS (64-bit) + 4: the guard digits of _mpd_qpow_real.
POWER_GUARD_DIGITS = 4 + 19
#: How many digits beyond libmpdec's working precision our logarithm carries.
EXTRA_DIGITS = 12
GRID = Decimal("0.001")
LOW, HIGH = Decimal("0.5"), Decimal(16)
MAX_EXPONENT = Decimal(100)
ONE = Decimal(1)
#: With exponent limits at least this wide libmpdec's over/underflow shortcut cannot fire here.
SANE_EXPONENT = 999
#: Longest base and context precision taken: z then stays far above the float range's floor.
MAX_DIGITS = 60


def _context(prec: int, rounding: str = ROUND_HALF_EVEN) -> Context:
    # mpd_maxcontext: unbounded exponents, no traps (nothing here can overflow anyway).
    return Context(prec=prec, rounding=rounding, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[])


@lru_cache(maxsize=64)
def _contexts(work: int) -> tuple[Context, Context, Context, Context]:
    """(libmpdec's working context, ours, ours rounding down, ours rounding up) for `work`."""
    ours = work + EXTRA_DIGITS
    return (
        _context(work),
        _context(ours),
        _context(ours + 10, ROUND_FLOOR),
        _context(ours + 10, ROUND_CEILING),
    )


@lru_cache(maxsize=16_384)
def _ln_anchor(anchor: Decimal, prec: int) -> Decimal:
    """ln(anchor), correctly rounded to `prec` digits.

    Anchors are the 15,501 points of the 0.001 grid on [0.5, 16], so the cache can hold them all
    (a few MB) and never thrashes; a miss costs one libmpdec ln (~100 us), once per process.
    """
    return _context(prec).ln(anchor)


def _ln_work(base: Decimal, work: int) -> Decimal:
    """ln(base) correctly rounded half-even to `work` digits, as libmpdec's `ln` gives it."""
    work_ctx, ours, down, up = _contexts(work)
    prec = ours.prec
    anchor = base.quantize(GRID, context=ours)
    # ln(anchor) to prec + 5 digits: error <= 0.5e-(prec + 4) since |ln(anchor)| < 3.
    total = _ln_anchor(anchor, prec + 5)
    z = ours.divide(ours.subtract(base, anchor), ours.add(base, anchor))  # both operands exact
    terms = 0
    if z:
        # |z| <= 5e-4, so the tail after n terms is below |z| ** (2n + 3) <= 10 ** -(prec + 1);
        # the float log10 is good to ~1e-15 relative and the one extra decade covers it.
        decades = -math.log10(abs(float(z)))
        terms = max(0, math.ceil(((prec + 1) / decades - 3) / 2))
        z2 = ours.multiply(z, z)
        power = z
        series = z
        for k in range(1, terms + 1):
            power = ours.multiply(power, z2)
            series = ours.add(series, ours.divide(power, 2 * k + 1))
        total = ours.add(total, ours.multiply(series, 2))
    # Error bound, with u = 5e-prec the relative rounding of one operation: ln(anchor) at most
    # 0.5e-(prec + 4); the final addition 3u (|total| < 3); the series, whose terms shrink at
    # least 4e6-fold each, 2 |z| u (terms + 2) <= 5e-(prec + 3) (terms + 2); the truncation,
    # doubled, 2e-prec (with the float's slack). Below 20e-prec together: 1e-(prec - 3) is ample.
    bound = Decimal(1).scaleb(3 - prec)
    low = work_ctx.plus(down.subtract(total, bound))
    high = work_ctx.plus(up.add(total, bound))
    if low == high and str(low) == str(high):
        return low
    return work_ctx.ln(base)  # too close to a rounding boundary to decide: libmpdec's own


def fractional_power(base: Decimal, exponent: Decimal) -> Decimal:
    """Exactly `base ** exponent` in the current context (value and spelling)."""
    ctx = getcontext()
    if not (
        FAST_PATH
        and base.is_finite()
        and ctx.prec <= MAX_DIGITS
        and ctx.Emax >= SANE_EXPONENT
        and ctx.Emin <= -SANE_EXPONENT
        and not ctx.traps[Inexact]  # libmpdec always signals Inexact here; plus() may not
        and not ctx.traps[Rounded]
        and LOW <= base <= HIGH
        and base != ONE
        and exponent.is_finite()
        and abs(exponent) <= MAX_EXPONENT
        and exponent != exponent.to_integral_value()
    ):
        return base**exponent
    digits = len(base.as_tuple().digits)
    if digits > MAX_DIGITS:
        return base**exponent
    work = max(digits, ctx.prec) + POWER_GUARD_DIGITS
    work_ctx = _contexts(work)[0]
    result = work_ctx.exp(work_ctx.multiply(_ln_work(base, work), exponent))
    if result == ONE:  # libmpdec respells a result of 1: leave that to it
        return base**exponent
    return ctx.plus(result)
