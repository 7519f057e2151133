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
from backend.credit.admission import Lanes, LaneSizes, lane_sizes


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
    async with lanes.admit(budget) as overloaded:
        seen.append(overloaded)
        await asyncio.sleep(seconds)
    return time.perf_counter() - started


def test_a_free_full_lane_admits_at_once() -> None:
    async def scenario() -> list[bool]:
        lanes, seen = Lanes(LaneSizes(full=2, overload=1)), []
        await asyncio.gather(*(_hold(lanes, 5.0, 0.01, seen) for _ in range(2)))
        return seen

    assert asyncio.run(scenario()) == [False, False]


def test_no_budget_means_the_overload_lane() -> None:
    async def scenario() -> list[bool]:
        lanes, seen = Lanes(LaneSizes(full=2, overload=1)), []
        await _hold(lanes, 0.0, 0.0, seen)
        return seen

    assert asyncio.run(scenario()) == [True]


def test_a_waiter_gives_up_the_full_lane_when_its_budget_is_gone() -> None:
    async def scenario() -> tuple[list[bool], float]:
        lanes, seen = Lanes(LaneSizes(full=1, overload=1)), []
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
        lanes, seen = Lanes(LaneSizes(full=1, overload=4)), []
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
        lanes, seen = Lanes(LaneSizes(full=1, overload=1)), []
        for _ in range(3):
            with pytest.raises(RuntimeError):
                async with lanes.admit(5.0):
                    raise RuntimeError("the endpoint failed")
        await _hold(lanes, 5.0, 0.0, seen)
        return seen

    assert asyncio.run(scenario()) == [False]


def test_cancelled_waiters_leave_the_queue() -> None:
    async def scenario() -> tuple[int, list[bool]]:
        lanes, seen = Lanes(LaneSizes(full=1, overload=1)), []
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
