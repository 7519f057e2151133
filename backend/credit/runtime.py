"""What the credit fan-out shares across requests in one process: the HTTP connection pool to
lenders, the per-block pool-state cache, and how long the post-fan-out work has been taking.

Why shared: a client per request opens 20 new TCP connections per request and throws them away;
one client keeps them alive, so a lender answering in 20 ms costs 20 ms, not 20 ms plus a
handshake. The client is `lender_http.LenderClient`, a bare HTTP/1.1 pool that costs a tenth of
the CPU per call of httpx over aiohttp. It belongs to the event loop that created it, so the
client is kept per running loop (the server has one; a test client may start several).

Why the timing: the borrower's latency is bounded by one deadline for the whole request, not
just the fan-out. Under load the work after the fan-out (normalise, persist, sign the receipt)
takes longer, so the fan-out is cut that much earlier: overload yields fewer quotes, not a late
answer or an error. The reserve is a decaying maximum of recent finish times, which follows a
load increase at once and a load decrease slowly.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import anyio
import anyio.to_thread

from backend.config import Settings
from backend.credit.admission import (
    BACKLOG_SHARE,
    INITIAL_SERVICE_SECONDS,
    Admission,
    Lanes,
    lane_sizes,
)
from backend.credit.chain import ChainReader
from backend.credit.lender_http import LenderClient
from backend.credit.pool_state import PoolStateCache

#: Never reserve less than this for the work after the fan-out (seconds).
MIN_RESERVE = 0.015
#: How much of the previous reserve survives each new observation.
RESERVE_DECAY = 0.95
#: Worker threads per process for the credit request's database phases (`in_thread`).
CPU_THREADS = 4
#: ... and for overloaded requests (cheap, and they must not crowd out the full ones).
OVERLOAD_THREADS = 2

T = TypeVar("T")


@dataclass
class FinishReserve:
    """A decaying maximum of how long the work after the fan-out took (seconds)."""

    value: float = MIN_RESERVE

    def observe(self, seconds: float) -> None:
        self.value = max(MIN_RESERVE, seconds, self.value * RESERVE_DECAY)


@dataclass
class _LoopState:
    """What belongs to one running event loop: asyncio and anyio primitives, and the lender
    client's connections, cannot be shared across loops (the server has one loop; a test
    client may start several)."""

    lanes: Lanes
    full_threads: anyio.CapacityLimiter
    overload_threads: anyio.CapacityLimiter
    client: LenderClient


@dataclass
class CreditRuntime:
    settings: Settings
    reader: ChainReader
    pools: PoolStateCache
    reserve: FinishReserve = field(default_factory=FinishReserve)
    #: What phase 1 (screen, score, read providers) has lately taken, admission wait excluded.
    prepare_reserve: FinishReserve = field(default_factory=FinishReserve)
    _loops: dict[int, tuple[asyncio.AbstractEventLoop, _LoopState]] = field(default_factory=dict)

    def budget_left(self, started: float) -> float:
        """What a request that arrived at `started` has left for its fan-out once phase 1 and
        the work after the fan-out (at what they have lately taken) are paid for. At or below
        zero the request is overloaded: it asks nobody, so phase 1 skips planning the calls."""
        left = self.settings.credit_fanout_deadline - (time.perf_counter() - started)
        return left - self.prepare_reserve.value - self.reserve.value

    @contextlib.asynccontextmanager
    async def admit(self, started: float) -> AsyncIterator[Admission]:
        """Admit a request that arrived at `started` (see `backend.credit.admission`); yields
        whether it is overloaded. It may wait for the full lane while it has a fan-out budget."""
        lanes = self._here().lanes
        async with lanes.admit(self.budget_left(started), arrived=started) as admission:
            yield admission

    async def in_thread(self, func: Callable[..., T], *args: object, overloaded: bool = False) -> T:
        """Run a database phase of a credit request in a worker thread: at most `CPU_THREADS`
        at once per loop for full requests and `OVERLOAD_THREADS` for overloaded ones.

        Why a limit of its own: these phases are CPU-heavy, and every extra runnable thread
        takes GIL turns from the event loop (which drives every fan-out and reads the next
        requests) and from the thread holding the receipt log's or audit head's row lock
        until its commit: with dozens of threads each of those locks is held for many GIL
        turns, and every request queues behind it. Two limits, so a burst of overloaded
        requests never holds up the last phase of a full one. A request waiting here holds no
        thread."""
        here = self._here()
        limiter = here.overload_threads if overloaded else here.full_threads
        return await anyio.to_thread.run_sync(functools.partial(func, *args), limiter=limiter)

    @classmethod
    def build(cls, settings: Settings, reader: ChainReader) -> CreditRuntime:
        return cls(
            settings, reader, PoolStateCache(reader, head_max_age=settings.credit_head_max_age)
        )

    def client(self) -> LenderClient:
        """The running loop's shared client (created on first use)."""
        return self._here().client

    def _here(self) -> _LoopState:
        """The running loop's state, created on first use; the state of loops that have ended
        (a test client's) is dropped."""
        loop = asyncio.get_running_loop()
        for key, (owner, _state) in list(self._loops.items()):
            if owner.is_closed():
                del self._loops[key]
        entry = self._loops.get(id(loop))
        if entry is None or entry[0] is not loop:
            state = _LoopState(
                lanes=Lanes(
                    lane_sizes(self.settings),
                    initial_service_seconds=INITIAL_SERVICE_SECONDS,
                    max_backlog_age=self.settings.credit_fanout_deadline * BACKLOG_SHARE,
                ),
                full_threads=anyio.CapacityLimiter(CPU_THREADS),
                overload_threads=anyio.CapacityLimiter(OVERLOAD_THREADS),
                client=LenderClient(
                    timeout=self.settings.credit_provider_timeout,
                    max_connections=self.settings.credit_http_max_connections,
                ),
            )
            entry = (loop, state)
            self._loops[id(loop)] = entry
        return entry[1]

    async def aclose(self) -> None:
        """Close the running loop's client (call from the app's shutdown)."""
        entry = self._loops.pop(id(asyncio.get_running_loop()), None)
        if entry is not None:
            await entry[1].client.aclose()
