"""Laws of the fan-out under load: our own overload never charges a lender's circuit breaker,
and the reserve kept for the work after the fan-out follows load up at once."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from backend.credit.fanout import Call, fan_out
from backend.credit.models import Outcome
from backend.credit.runtime import MIN_RESERVE, FinishReserve
from backend.credit.sources import SourceResult


def _answer_after(provider_id: int, seconds: float) -> Call:
    async def run() -> SourceResult:
        await asyncio.sleep(seconds)
        return SourceResult(Outcome.DECLINED, reason="done")

    return Call(provider_id=provider_id, run=run)


def test_with_no_time_left_nobody_is_asked_and_no_breaker_is_charged() -> None:
    asked: list[int] = []

    def call(pid: int) -> Call:
        async def run() -> SourceResult:
            asked.append(pid)
            return SourceResult(Outcome.DECLINED)

        return Call(pid, run)

    results = asyncio.run(fan_out([call(1), call(2)], provider_timeout=2, deadline=0))
    assert asked == []
    assert {r.outcome for r in results.values()} == {Outcome.TIMED_OUT}
    assert not any(r.counts_as_failure for r in results.values())


def test_a_cut_by_a_deadline_shorter_than_the_provider_timeout_is_not_the_provider_fault() -> None:
    results = asyncio.run(
        fan_out([_answer_after(1, 0), _answer_after(2, 30)], provider_timeout=2, deadline=0.2)
    )
    assert results[1].outcome is Outcome.DECLINED
    assert results[2].outcome is Outcome.TIMED_OUT
    assert not results[2].counts_as_failure  # it was never given its 2 s


@given(st.lists(st.floats(min_value=0, max_value=10, allow_nan=False), min_size=1, max_size=50))
def test_the_reserve_covers_the_latest_finish_and_never_drops_below_the_floor(
    observed: list[float],
) -> None:
    reserve = FinishReserve()
    for seconds in observed:
        before = reserve.value
        reserve.observe(seconds)
        assert reserve.value >= max(seconds, MIN_RESERVE)  # follows load up at once
        assert reserve.value <= max(before, seconds, MIN_RESERVE)  # never above what was seen
