"""Laws of the pipeline's parts: the risk score, the fan-out's deadlines and the circuit
breaker's state machine (on the real database, with the clock passed in)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from backend.credit import circuit_breaker
from backend.credit.chain import LOAN_ACTIVE, LOAN_CLOSED, LOAN_DEFAULTED, ChainLoan
from backend.credit.circuit_breaker import Admission
from backend.credit.fanout import Call, fan_out
from backend.credit.models import Outcome
from backend.credit.risk import MAX_SCORE, MIN_SCORE, score_history
from backend.credit.sources import SourceResult
from backend.kit.columns import utcnow
from backend.providers.models import Provider

loans = st.lists(
    st.builds(
        ChainLoan,
        chain_id=st.just(31337),
        state=st.sampled_from([LOAN_ACTIVE, LOAN_CLOSED, LOAN_DEFAULTED]),
        principal=st.integers(1, 10**12),
        outstanding=st.integers(0, 10**12),
    ),
    max_size=30,
)


def loan(state: int) -> ChainLoan:
    return ChainLoan(chain_id=31337, state=state, principal=1, outstanding=0)


@given(loans, st.integers(0, 50))
def test_the_score_stays_in_range_and_every_change_is_explained(
    history: list[ChainLoan], recent: int
) -> None:
    score, reasons = score_history(history, recent)
    assert MIN_SCORE <= score <= MAX_SCORE
    assert (score != 650) <= bool(reasons)
    assert ("thin_file" in reasons) == (not history)


@given(loans, st.integers(0, 50))
def test_a_default_never_helps_and_a_repaid_loan_never_hurts(
    history: list[ChainLoan], recent: int
) -> None:
    score, _ = score_history(history, recent)
    assert score_history([*history, loan(LOAN_DEFAULTED)], recent)[0] <= score
    if history:  # (the first loan of all also drops `thin_file`, which carries no points)
        assert score_history([*history, loan(LOAN_CLOSED)], recent)[0] >= score


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
