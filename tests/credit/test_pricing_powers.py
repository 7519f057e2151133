"""`fractional_power` is libmpdec's `**`, digit for digit and spelling for spelling.

It replaces libmpdec's logarithm with a series it proves close enough to round the same way, so
the law is plain equality with `base ** exponent`, in every context the solvers may run in,
including bases where the proof must give up (ln(base) near 0, far from every grid point or on
one) and the inputs it must hand straight to libmpdec (integer exponents, bases out of range).
"""

from __future__ import annotations

import decimal
from collections.abc import Callable
from decimal import (
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Decimal,
    localcontext,
)

from hypothesis import example, given, settings
from hypothesis import strategies as st

from backend.credit.pricing.powers import FAST_PATH, fractional_power

D = Decimal

# 1 + x as the solvers build it: x a 40-digit Newton iterate, a grid point, tiny, or a probe.
offsets = st.one_of(
    st.integers(-(10**39), 15 * 10**39).map(lambda n: D(n).scaleb(-39)),
    st.integers(-499, 15_000).map(lambda n: D(n).scaleb(-3)),
    st.integers(-(10**6), 10**6).map(lambda n: D(n).scaleb(-45)),
    st.sampled_from([D(0), D(1), D("0.1"), D(4), D(16), D("-0.999999999")]),
)
# -years on both time bases, integers, and the bounds of the fast path.
exponents = st.one_of(
    st.integers(1, 1200).map(lambda m: -(D(m) / 12)),
    st.integers(1, 36_500).map(lambda d: -(D(d) / 365)),
    st.integers(-100, 100).map(D),
    st.integers(-(10**6), 10**6).map(lambda n: D(n).scaleb(-4)),
    st.sampled_from([D("-100"), D("100"), D("-100.5"), D("99.99"), D("0.5"), D("-0.25")]),
)
contexts = st.tuples(
    st.sampled_from([40, 40, 28, 50, 63]),
    st.sampled_from([ROUND_HALF_EVEN, ROUND_HALF_EVEN, ROUND_DOWN, ROUND_UP, ROUND_HALF_UP]),
)


@settings(max_examples=3000, deadline=None)
@given(offset=offsets, exponent=exponents, context=contexts)
@example(offset=D("1E-39"), exponent=D(-7) / 12, context=(40, ROUND_HALF_EVEN))  # ln ~ 1e-39
@example(offset=D("-0.5"), exponent=D("-0.5"), context=(40, ROUND_HALF_EVEN))  # lowest base
@example(offset=D(15), exponent=D("-99.5"), context=(40, ROUND_HALF_EVEN))  # highest base
@example(offset=D("0.1005"), exponent=D(-1) / 12, context=(40, ROUND_FLOOR))  # between grid points
@example(offset=D(3), exponent=D("-0.5"), context=(40, ROUND_HALF_EVEN))  # exactly 0.5
def test_fractional_power_is_libmpdec_power(
    offset: Decimal, exponent: Decimal, context: tuple[int, str]
) -> None:
    def outcome(power: Callable[[Decimal, Decimal], Decimal]) -> str:
        with localcontext() as ctx:
            ctx.prec, ctx.rounding = context
            try:
                return repr(power(1 + offset, exponent))
            except ArithmeticError as error:  # 0 ** -y: the same trap either way
                return type(error).__name__

    assert outcome(fractional_power) == outcome(lambda base, exponent: base**exponent)


def test_the_fast_path_runs_on_this_interpreter() -> None:
    """Otherwise the law above only compares `**` with itself. On a new Python (another
    libmpdec), re-read `_mpd_qpow_real`, run this module, then add the version to the list."""
    assert FAST_PATH, f"libmpdec {decimal.__libmpdec_version__} is not in VERIFIED_LIBMPDEC"
