"""Laws of the pipeline's parts: the recency adjustment of the risk score, the fan-out's
deadlines and the circuit breaker's state machine (on the real database, with the clock
passed in)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from backend.credit import circuit_breaker
from backend.credit.circuit_breaker import Admission
from backend.credit.fanout import Call, fan_out
from backend.credit.models import Outcome
from backend.credit.risk import RECENT_REQUESTS_LIMIT, with_recency
from backend.credit.sources import SourceResult
from backend.kit.columns import utcnow
from backend.providers.models import Provider
from backend.risk.service import MAX_SCORE, MIN_SCORE, Score

scores = st.builds(
    Score,
    value=st.integers(MIN_SCORE, MAX_SCORE),
    reasons=st.lists(st.sampled_from(["NO_HISTORY", "DEFAULTS", "LOANS_REPAID"]), min_size=1).map(
        tuple
    ),
)


@given(scores, st.integers(0, 50))
def test_recent_requests_cost_points_only_past_the_limit_and_always_say_so(
    base: Score, recent: int
) -> None:
    adjusted = with_recency(base, recent)
    assert MIN_SCORE <= adjusted.value <= base.value
    if recent < RECENT_REQUESTS_LIMIT:
        assert adjusted == base
    else:
        assert adjusted.reasons == (*base.reasons, "MANY_RECENT_REQUESTS")
        assert adjusted.value == max(MIN_SCORE, base.value - 25)


@given(scores, st.integers(0, 50), st.integers(0, 50))
def test_more_recent_requests_never_raise_the_score(base: Score, recent: int, more: int) -> None:
    assert with_recency(base, recent + more).value <= with_recency(base, recent).value


def _answer_after(seconds: float, outcome: Outcome = Outcome.DECLINED) -> Call:
    async def run() -> SourceResult:
        await asyncio.sleep(seconds)
        return SourceResult(outcome, reason="done")

    return Call(provider_id=int(seconds * 1000) + 1, run=run)


def test_fan_out_gives_every_provider_one_outcome_within_the_deadlines() -> None:
    async def broken() -> SourceResult:
        raise RuntimeError("lender adapter bug")

    calls = [
        _answer_after(0),
        _answer_after(60),  # past its own timeout
        Call(provider_id=999, run=broken),
    ]
    results = asyncio.run(fan_out(calls, provider_timeout=0.3, deadline=5))
    assert results[1].outcome is Outcome.DECLINED
    assert results[60_001].outcome is Outcome.TIMED_OUT
    assert results[60_001].counts_as_failure
    assert results[999].outcome is Outcome.ERROR
    assert results[999].reason == "source failed: RuntimeError"


def test_the_overall_deadline_cuts_every_provider_still_running() -> None:
    results = asyncio.run(
        fan_out([_answer_after(0), _answer_after(60)], provider_timeout=120, deadline=0.3)
    )
    assert results[1].outcome is Outcome.DECLINED
    assert results[60_001].outcome is Outcome.TIMED_OUT
    assert "overall deadline" in (results[60_001].reason or "")


def test_breaker_opens_probes_once_and_closes(db_session: Session) -> None:
    provider = Provider(name=f"breaker-{uuid.uuid4().hex[:8]}", kind="traditional")
    db_session.add(provider)
    db_session.flush()
    pid, t0, cooldown = provider.id, utcnow(), 30.0

    def admit(at: float) -> Admission:
        return circuit_breaker.admit(
            db_session, pid, now=t0 + timedelta(seconds=at), cooldown=cooldown
        )

    def record(at: float, success: bool) -> None:
        circuit_breaker.record(
            db_session, pid, success=success, now=t0 + timedelta(seconds=at), threshold=3
        )

    for at in (0, 1):
        assert admit(at) is Admission.CALL
        record(at, False)
    assert admit(2) is Admission.CALL  # two failures: still closed
    record(2, False)
    assert admit(3) is Admission.SKIP  # three: open
    assert admit(31) is Admission.SKIP  # cool-down counts from the opening failure
    assert admit(33) is Admission.PROBE  # half-open: one caller probes...
    assert admit(33.5) is Admission.SKIP  # ...and every other caller still skips
    record(34, False)  # the probe failed: open again, fresh cool-down
    assert admit(40) is Admission.SKIP
    assert admit(65) is Admission.PROBE
    record(65, True)  # the probe succeeded: closed, count reset
    assert admit(66) is Admission.CALL
    record(66, False)
    assert admit(67) is Admission.CALL


def test_a_probe_whose_caller_died_is_taken_over_after_a_cool_down(db_session: Session) -> None:
    provider = Provider(name=f"breaker-{uuid.uuid4().hex[:8]}", kind="traditional")
    db_session.add(provider)
    db_session.flush()
    t0 = utcnow()
    circuit_breaker.record(db_session, provider.id, success=False, now=t0, threshold=1)
    later = t0 + timedelta(seconds=11)
    assert circuit_breaker.admit(db_session, provider.id, now=later, cooldown=10) is Admission.PROBE
    # that caller never reports; another cool-down later someone else may probe
    much_later = later + timedelta(seconds=11)
    admitted = circuit_breaker.admit(db_session, provider.id, now=much_later, cooldown=10)
    assert admitted is Admission.PROBE
