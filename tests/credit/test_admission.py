"""Admission control: full lane, bounded wait, overload lane (`backend.credit.admission`).

Real asyncio tasks contend for the lanes; nothing is mocked. The laws: nobody waits for the
full lane past its budget, nobody queues when the queue ahead will not clear within half its
budget, both lanes together stay within the connection pool, and a place is always released.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.config import Settings
from backend.credit.admission import EarliestFirst, Lanes, LaneSizes, lane_sizes


def _settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"database_url": "postgresql+psycopg://u@h/db", **overrides}
    return Settings(_env_file=None, environment="test", **values)  # type: ignore[arg-type]


@given(
    in_flight=st.integers(1, 200),
    pool=st.integers(1, 100),
    overflow=st.integers(0, 100),
)
def test_both_lanes_fit_in_the_connection_pool(in_flight: int, pool: int, overflow: int) -> None:
    sizes = lane_sizes(
        _settings(credit_max_in_flight=in_flight, db_pool_size=pool, db_max_overflow=overflow)
    )
    assert sizes.full >= 1 and sizes.overload >= 1
    assert sizes.full <= in_flight
    if pool + overflow >= 2:  # one connection for each lane at the very least
        assert sizes.full + sizes.overload <= pool + overflow


def test_sqlite_runs_few_requests_at_once() -> None:
    sizes = lane_sizes(_settings(database_url="sqlite:///x.db", credit_max_in_flight=50))
    assert sizes.full + sizes.overload <= 4


async def _hold(lanes: Lanes, budget: float, seconds: float, seen: list[bool]) -> float:
    started = time.perf_counter()
    async with lanes.admit(budget, arrived=time.perf_counter()) as admission:
        seen.append(admission.overloaded)
        await asyncio.sleep(seconds)
    return time.perf_counter() - started


def test_a_free_full_lane_admits_at_once() -> None:
    async def scenario() -> list[bool]:
        lanes, seen = Lanes(LaneSizes(full=2, overload=1), initial_service_seconds=0.1), []
        await asyncio.gather(*(_hold(lanes, 5.0, 0.01, seen) for _ in range(2)))
        return seen

    assert asyncio.run(scenario()) == [False, False]


def test_no_budget_means_the_overload_lane() -> None:
    async def scenario() -> list[bool]:
        lanes, seen = Lanes(LaneSizes(full=2, overload=1), initial_service_seconds=0.1), []
        await _hold(lanes, 0.0, 0.0, seen)
        return seen

    assert asyncio.run(scenario()) == [True]


def test_a_waiter_gives_up_the_full_lane_when_its_budget_is_gone() -> None:
    async def scenario() -> tuple[list[bool], float]:
        lanes, seen = Lanes(LaneSizes(full=1, overload=1), initial_service_seconds=0.1), []
        holder = asyncio.create_task(_hold(lanes, 5.0, 1.0, seen))
        await asyncio.sleep(0.01)
        waited = await _hold(lanes, 0.1, 0.0, seen)
        await holder
        return seen, waited

    seen, waited = asyncio.run(scenario())
    assert seen == [False, True]
    assert waited < 0.9  # it did not wait for the holder to finish


def test_a_long_queue_sends_newcomers_to_the_overload_lane_at_once() -> None:
    async def scenario() -> tuple[list[bool], list[float]]:
        lanes, seen = Lanes(LaneSizes(full=1, overload=4), initial_service_seconds=0.1), []
        lanes.service_seconds = 1.0  # full requests lately held their place for a second
        holder = asyncio.create_task(_hold(lanes, 5.0, 0.3, seen))
        await asyncio.sleep(0.01)
        # budget 3 s: half is 1.5 s, so one waiter (expected 1 s) queues; the next ones
        # (expected 2 s, 3 s...) are answered at once
        first = asyncio.create_task(_hold(lanes, 3.0, 0.0, seen))
        await asyncio.sleep(0.01)
        late = await asyncio.gather(*(_hold(lanes, 3.0, 0.0, seen) for _ in range(3)))
        await asyncio.gather(holder, first)
        return seen, late

    seen, late = asyncio.run(scenario())
    assert seen[0] is False
    assert seen[1:4] == [True, True, True]  # the three newcomers, answered while others wait
    assert seen[4] is False  # the one that queued got the full lane
    assert max(late) < 0.2


def test_places_are_released_even_when_the_request_fails() -> None:
    async def scenario() -> list[bool]:
        lanes, seen = Lanes(LaneSizes(full=1, overload=1), initial_service_seconds=0.1), []
        for _ in range(3):
            with pytest.raises(RuntimeError):
                async with lanes.admit(5.0, arrived=time.perf_counter()):
                    raise RuntimeError("the endpoint failed")
        await _hold(lanes, 5.0, 0.0, seen)
        return seen

    assert asyncio.run(scenario()) == [False]


def test_cancelled_waiters_leave_the_queue() -> None:
    async def scenario() -> tuple[int, list[bool]]:
        lanes, seen = Lanes(LaneSizes(full=1, overload=1), initial_service_seconds=0.1), []
        holder = asyncio.create_task(_hold(lanes, 5.0, 0.2, seen))
        await asyncio.sleep(0.01)
        waiter = asyncio.create_task(_hold(lanes, 5.0, 0.0, seen))
        await asyncio.sleep(0.01)
        queued_while_waiting = lanes.queued
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await holder
        await _hold(lanes, 5.0, 0.0, seen)
        return queued_while_waiting - lanes.queued, seen

    left, seen = asyncio.run(scenario())
    assert left == 1
    assert seen == [False, False]


def test_a_burst_on_a_cold_process_does_not_all_queue() -> None:
    """Before any full request has finished, the assumed service time bounds the queue: a
    burst of 20 with one place and a 2 s budget queues a few and answers the rest at once."""

    async def scenario() -> tuple[list[bool], list[float]]:
        lanes, seen = Lanes(LaneSizes(full=1, overload=20), initial_service_seconds=0.25), []
        took = await asyncio.gather(*(_hold(lanes, 2.0, 0.05, seen) for _ in range(20)))
        return seen, took

    seen, took = asyncio.run(scenario())
    full = seen.count(False)
    assert 2 <= full <= 5  # the holder plus the ones expected within half the budget (1 s)
    assert max(took) < 2.0  # nobody waited out the budget


def test_a_late_overload_backlog_keeps_newcomers_off_the_full_lane() -> None:
    """While the overload lane's oldest waiter has waited past the backlog age, a newcomer
    answers from the overload lane even with a free full lane and a whole budget; before that
    age, and once the backlog is gone, it takes the full lane."""

    async def scenario() -> tuple[bool, bool, bool, bool]:
        lanes = Lanes(
            LaneSizes(full=2, overload=1), initial_service_seconds=0.01, max_backlog_age=0.1
        )
        seen: list[bool] = []
        # no budget: both take the overload lane; its one place is held, the second waits
        holder = asyncio.create_task(_hold(lanes, 0.0, 0.4, seen))
        await asyncio.sleep(0)
        waiter = asyncio.create_task(_hold(lanes, 0.0, 0.0, seen))
        await asyncio.sleep(0.02)
        young: list[bool] = []
        await _hold(lanes, 5.0, 0.0, young)  # the backlog is 20 ms old: full lane
        await asyncio.sleep(0.15)
        backlogged = lanes.backlogged()
        old: list[bool] = []
        await _hold(lanes, 5.0, 0.0, old)  # past 0.1 s: overload lane, behind the waiter
        await asyncio.gather(holder, waiter)
        after: list[bool] = []
        await _hold(lanes, 5.0, 0.0, after)
        return young[0], backlogged, old[0], after[0]

    young, backlogged, old, after = asyncio.run(scenario())
    assert young is False  # overloaded? no
    assert backlogged is True
    assert old is True
    assert after is False


def test_the_overload_lane_serves_the_earliest_arrival_first() -> None:
    """A request that arrived first but reached the overload lane last (it queued for the full
    lane before) is served before later arrivals already waiting there."""

    async def scenario() -> list[str]:
        lane, order = EarliestFirst(1), []

        async def ask(name: str, arrived: float) -> None:
            async with lane.place(arrived):
                order.append(name)
                await asyncio.sleep(0.01)

        holder = asyncio.create_task(ask("holder", 0.0))
        await asyncio.sleep(0)
        later = [asyncio.create_task(ask(f"late-{i}", 10.0 + i)) for i in range(3)]
        await asyncio.sleep(0)
        early = asyncio.create_task(ask("early", 1.0))  # joins last, arrived before them all
        await asyncio.gather(holder, early, *later)
        return order

    assert asyncio.run(scenario()) == ["holder", "early", "late-0", "late-1", "late-2"]


@given(
    places=st.integers(1, 4),
    arrivals=st.lists(st.floats(0, 100), min_size=1, max_size=25),
    cancel_at=st.dictionaries(st.integers(0, 24), st.integers(0, 60)),
)
def test_earliest_first_never_exceeds_its_places_and_loses_none(
    places: int, arrivals: list[float], cancel_at: dict[int, int]
) -> None:
    """Whatever the arrivals and whenever waiters or holders are cancelled (including just
    after a place was handed to them): never more holders than places, every request that is
    not cancelled gets a place, and afterwards every place is free again."""

    async def scenario() -> tuple[int, int, int]:
        lane, holding, most, served = EarliestFirst(places), 0, 0, 0

        async def ask(arrived: float) -> None:
            nonlocal holding, most, served
            async with lane.place(arrived):
                holding += 1
                most = max(most, holding)
                try:
                    for _ in range(3):  # hold for a few loop turns
                        await asyncio.sleep(0)
                finally:
                    holding -= 1
                served += 1

        tasks = [asyncio.create_task(ask(a)) for a in arrivals]
        for turn in range(61):  # cancel each chosen task at its chosen loop turn
            for index, at in cancel_at.items():
                if at == turn and index < len(tasks):
                    tasks[index].cancel()
            await asyncio.sleep(0)
        await asyncio.gather(*tasks, return_exceptions=True)
        assert holding == 0
        survivors = sum(1 for t in tasks if not t.cancelled())
        free = 0  # all places free again: `places` holders get in at once
        for _ in range(places):
            await asyncio.wait_for(lane._acquire(0.0), 1)
            free += 1
        return most, survivors - served, free

    most, lost, free = asyncio.run(scenario())
    assert most <= places
    assert lost == 0
    assert free == places
