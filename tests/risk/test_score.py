"""Laws of the score: bounded, monotone in repayments (up) and defaults/liquidations (down)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from backend.risk.service import MAX_SCORE, MIN_SCORE, History, score

counts = st.integers(min_value=0, max_value=1_000)
amounts = st.integers(min_value=0, max_value=2**256 - 1)
histories = st.builds(
    History,
    repayments=counts,
    loans_repaid=counts,
    defaults=counts,
    liquidations=counts,
    outstanding=amounts,
    repaid_total=amounts,
)


@given(histories)
def test_score_is_bounded_and_explained(history: History) -> None:
    result = score(history)
    assert MIN_SCORE <= result.value <= MAX_SCORE
    assert result.reasons


@given(histories, st.integers(min_value=1, max_value=50))
def test_more_repayments_never_lower_the_score(history: History, extra: int) -> None:
    better = replace(history, repayments=history.repayments + extra)
    assert score(better).value >= score(history).value


@given(histories, st.integers(min_value=1, max_value=50))
def test_more_repaid_loans_never_lower_the_score(history: History, extra: int) -> None:
    better = replace(history, loans_repaid=history.loans_repaid + extra)
    assert score(better).value >= score(history).value


@given(histories, st.integers(min_value=1, max_value=50))
def test_more_defaults_or_liquidations_never_raise_the_score(history: History, extra: int) -> None:
    assert score(replace(history, defaults=history.defaults + extra)).value <= score(history).value
    worse = replace(history, liquidations=history.liquidations + extra)
    assert score(worse).value <= score(history).value


@given(histories, amounts)
def test_more_exposure_never_raises_the_score(history: History, extra: int) -> None:
    worse = replace(history, outstanding=history.outstanding + extra)
    assert score(worse).value <= score(history).value


def test_a_clean_history_scores_above_a_defaulted_one() -> None:
    good = score(History(repayments=6, loans_repaid=2, repaid_total=10, outstanding=0))
    bad = score(History(defaults=1, outstanding=10))
    assert good.value > bad.value
    assert "DEFAULTS" in bad.reasons and "DEFAULTS" not in good.reasons
