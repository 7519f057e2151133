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
  cheap answers never queue behind full requests.

Both waits hold no thread and no connection: admission is taken before authentication.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from backend.config import Settings

#: SQLite serialises every transaction (BEGIN IMMEDIATE); more requests in flight than this
#: only queue on its busy timeout, and the unlucky ones fail with "database is locked".
SQLITE_IN_FLIGHT = 4


#: A request queues for the full lane only if its expected wait is at most this share of its
#: fan-out budget: the estimate is rough, and a request admitted at the end of its budget asks
#: nobody anyway, so it would have paid the wait for nothing.
WAIT_SHARE = 0.5
#: At most this many overloaded requests in flight per process: they are cheap, but each is a
#: thread's worth of work; beyond this they only queue for `CreditRuntime.in_thread` anyway.
OVERLOAD_IN_FLIGHT = 8
#: Weight of the newest observation in the full lane's service-time average.
SERVICE_WEIGHT = 0.2


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


class Lanes:
    """One running loop's lanes (asyncio primitives belong to the loop that uses them)."""

    def __init__(self, sizes: LaneSizes) -> None:
        self.sizes = sizes
        self._full = asyncio.Semaphore(sizes.full)
        self._overload = asyncio.Semaphore(sizes.overload)
        self.queued = 0  # requests waiting for the full lane
        self.service_seconds = 0.0  # moving average of how long a full request holds its place

    def expected_wait(self) -> float:
        """How long a request arriving now would wait for the full lane: the queue ahead of it
        plus itself, one place freeing every service time / lane size."""
        if not self._full.locked():
            return 0.0
        return (self.queued + 1) * self.service_seconds / self.sizes.full

    @contextlib.asynccontextmanager
    async def admit(self, budget: float) -> AsyncIterator[bool]:
        """Enter a lane; yields whether the request is overloaded (asks nobody).

        `budget`: how long the request may wait for the full lane and still ask providers."""
        if await self._enter_full(budget):
            entered = time.perf_counter()
            try:
                yield False
            finally:
                self._full.release()
                held = time.perf_counter() - entered
                self.service_seconds += SERVICE_WEIGHT * (held - self.service_seconds)
            return
        async with self._overload:
            yield True

    async def _enter_full(self, budget: float) -> bool:
        if budget <= 0 or self.expected_wait() > budget * WAIT_SHARE:
            return False  # waiting would use up the budget: answer now instead
        self.queued += 1
        try:
            await asyncio.wait_for(self._full.acquire(), budget)
        except TimeoutError:
            return False
        finally:
            self.queued -= 1
        return True
