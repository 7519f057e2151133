"""Admission control for credit requests: a full lane, a bounded queue, and an overload lane.

Why: the box running the API is CPU-bound long before its network is. A full credit request
costs tens of milliseconds of CPU (20 lender calls, pricing, persisting, signing a receipt), so
past a handful in flight per core more concurrency only thrashes: requests share the GIL, the
event loop driving every fan-out starves and everybody comes late. Queueing is no better once
the queue is longer than the deadline: a closed loop of 200 borrowers against a lane that
finishes ~20 full requests a second means a 10 s wait. So:

* the **full lane** bounds the full requests in flight (each holds at most one database
  connection, so both lanes together stay within the pool);
* a request queues for it only if the queue ahead of it should clear well within its fan-out
  budget (from how long full requests lately held their place), and only while the budget
  lasts; otherwise
* it takes the **overload lane**: it asks no provider and answers at once, listing each as
  skipped. Overload degrades to fewer quotes, never to an error or a late answer, and these
  cheap answers never queue behind full requests;
* and when even the cheap answers fall behind (the overload lane's oldest waiter has waited
  `BACKLOG_SHARE` of the deadline), nobody new takes the full lane until they catch up: a full
  request costs several overloaded answers' CPU, and in a closed loop of borrowers the CPU
  spent on full requests is what makes the overloaded ones late.

Both waits hold no thread and no connection: admission is taken before authentication.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from backend.config import Settings

#: SQLite serialises every transaction (BEGIN IMMEDIATE); more requests in flight than this
#: only queue on its busy timeout, and the unlucky ones fail with "database is locked".
SQLITE_IN_FLIGHT = 4


#: A request queues for the full lane only if its expected wait is at most this share of its
#: fan-out budget, and gives up after waiting that long: the estimate is rough, and a request
#: admitted at the end of its budget asks nobody anyway, so it would have paid the wait for
#: nothing.
WAIT_SHARE = 0.5
#: At most this many overloaded requests in flight per process: they are cheap, but each is a
#: thread's worth of work; beyond this they only queue for `CreditRuntime.in_thread` anyway.
OVERLOAD_IN_FLIGHT = 8
#: What a full request is assumed to hold its place for until one has finished (seconds): a
#: full request with 20 lenders takes 0.1-0.5 s on a quiet 2-core box (`scripts/bench/fanout.py`).
INITIAL_SERVICE_SECONDS = 0.5
#: Weight of the newest observation in the full lane's service-time average.
SERVICE_WEIGHT = 0.2
#: Share of the overall deadline the overload lane's oldest waiter may have waited before new
#: requests stop taking the full lane: what is left covers its thread wait, its work and the
#: backlog's drain (`scripts/bench/fanout.py` at 200 clients: 0.3-0.5 s after the lane).
BACKLOG_SHARE = 0.3


@dataclass(frozen=True)
class LaneSizes:
    full: int
    overload: int


def lane_sizes(settings: Settings) -> LaneSizes:
    """Per process: `credit_max_in_flight` full requests (a CPU limit: a few per core keep it
    busy while they wait on lenders) and the rest of the connection pool for the overload lane,
    whose requests are cheap and mostly wait on the database (SQLite: its one-writer limit)."""
    pool = settings.db_pool_size + settings.db_max_overflow
    if settings.effective_database_url.startswith("sqlite"):
        pool = min(pool, SQLITE_IN_FLIGHT)  # one writer at a time, whatever we do
    full = max(1, min(settings.credit_max_in_flight, pool - 1))
    return LaneSizes(full=full, overload=max(1, min(pool - full, OVERLOAD_IN_FLIGHT)))


class EarliestFirst:
    """A counting semaphore that, when places are short, hands the next free place to the
    waiter that arrived at the server first (earliest deadline first), not the one that asked
    first: a request that spent its budget queueing for the full lane must not then queue
    again behind requests that arrived seconds after it."""

    def __init__(self, places: int) -> None:
        self._free = places
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._tickets = itertools.count()  # ties (same arrival) in asking order

    @contextlib.asynccontextmanager
    async def place(self, arrived: float) -> AsyncIterator[None]:
        await self._acquire(arrived)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, arrived: float) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (arrived, next(self._tickets), waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed a place just as it was cancelled: pass it on
            else:
                self._waiters = [w for w in self._waiters if w[2] is not waiter]
                heapq.heapify(self._waiters)
            raise

    def oldest_arrival(self) -> float | None:
        """When the earliest waiter arrived (None: nobody waits); cancelled waiters leave
        the heap at once and served ones are popped, so the top is a live one."""
        return self._waiters[0][0] if self._waiters else None

    def _release(self) -> None:
        while self._waiters:
            _, _, waiter = heapq.heappop(self._waiters)
            if not waiter.done():
                waiter.set_result(None)  # the place passes straight to it
                return
        self._free += 1


@dataclass(frozen=True)
class Admission:
    """How a request was admitted (its waits are reported in `Server-Timing`)."""

    overloaded: bool
    full_wait: float = 0.0
    overload_wait: float = 0.0
    queued: bool = False  # it found the full lane taken and waited for a place

    @property
    def contended(self) -> bool:
        """This process had no full-lane place free for it when it arrived."""
        return self.overloaded or self.queued


class Lanes:
    """One running loop's lanes (asyncio primitives belong to the loop that uses them)."""

    def __init__(
        self,
        sizes: LaneSizes,
        *,
        initial_service_seconds: float,
        max_backlog_age: float | None = None,
    ) -> None:
        """`initial_service_seconds`: what a full request is assumed to take until one has
        finished. Not zero: a burst on a cold process must not all queue for the full lane
        (and then all time out together) because nothing is known yet. `max_backlog_age`:
        how long the overload lane's oldest waiter may have waited before newcomers stop
        taking the full lane (None: never)."""
        self.sizes = sizes
        self.max_backlog_age = max_backlog_age
        self._full = asyncio.Semaphore(sizes.full)
        self._overload = EarliestFirst(sizes.overload)
        self.queued = 0  # requests waiting for the full lane
        # moving average of how long a full request holds its place
        self.service_seconds = initial_service_seconds

    def expected_wait(self) -> float:
        """How long a request arriving now would wait for the full lane: the queue ahead of it
        plus itself, one place freeing every service time / lane size."""
        if not self._full.locked():
            return 0.0
        return (self.queued + 1) * self.service_seconds / self.sizes.full

    @contextlib.asynccontextmanager
    async def admit(self, budget: float, *, arrived: float) -> AsyncIterator[Admission]:
        """Enter a lane; yields whether the request is overloaded (asks nobody) and how long
        it waited for each lane.

        `budget`: how long the request could wait and still ask providers; it waits for the
        full lane at most `WAIT_SHARE` of that. `arrived`: when it reached the server (the
        overload lane serves the earliest arrivals first)."""
        started = time.perf_counter()
        queued = self._full.locked()
        if await self._enter_full(budget):
            entered = time.perf_counter()
            try:
                yield Admission(overloaded=False, full_wait=entered - started, queued=queued)
            finally:
                self._full.release()
                held = time.perf_counter() - entered
                self.service_seconds += SERVICE_WEIGHT * (held - self.service_seconds)
            return
        gave_up = time.perf_counter()
        async with self._overload.place(arrived):
            yield Admission(
                overloaded=True,
                full_wait=gave_up - started,
                overload_wait=time.perf_counter() - gave_up,
            )

    def backlogged(self) -> bool:
        """Whether the overload lane's oldest waiter has waited past `max_backlog_age`."""
        oldest = self._overload.oldest_arrival()
        return (
            self.max_backlog_age is not None
            and oldest is not None
            and time.perf_counter() - oldest > self.max_backlog_age
        )

    async def _enter_full(self, budget: float) -> bool:
        if budget <= 0 or self.expected_wait() > budget * WAIT_SHARE:
            return False  # waiting would use up the budget: answer now instead
        if self.backlogged():
            return False  # the cheap answers are late already: no CPU for a full one
        if not self._full.locked():
            # Taken at once, before any other arrival decides: `wait_for` would wrap the
            # acquire in a task, and a burst would all see a free lane before any took it.
            await self._full.acquire()
            return True
        self.queued += 1
        try:
            await asyncio.wait_for(self._full.acquire(), budget * WAIT_SHARE)
        except TimeoutError:
            return False
        finally:
            self.queued -= 1
        return True
