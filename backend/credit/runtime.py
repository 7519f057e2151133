"""What the credit fan-out shares across requests in one process: the HTTP connection pool to
lenders, the per-block pool-state cache, and how long the post-fan-out work has been taking.

Why shared: a client per request opens 20 new TCP connections per request and throws them away;
one client keeps them alive, so a lender answering in 20 ms costs 20 ms, not 20 ms plus a
handshake. Its transport is aiohttp's pool (`http_pool`), much cheaper per call than httpcore.
An httpx client belongs to the event loop that created it, so the client is kept per running
loop (the server has one; a test client may start several).

Why the timing: the borrower's latency is bounded by one deadline for the whole request, not
just the fan-out. Under load the work after the fan-out (normalise, persist, sign the receipt)
takes longer, so the fan-out is cut that much earlier: overload yields fewer quotes, not a late
answer or an error. The reserve is a decaying maximum of recent finish times, which follows a
load increase at once and a load decrease slowly.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx

from backend.config import Settings
from backend.credit.chain import ChainReader
from backend.credit.http_pool import AiohttpTransport
from backend.credit.pool_state import PoolStateCache

#: Never reserve less than this for the work after the fan-out (seconds).
MIN_RESERVE = 0.015
#: How much of the previous reserve survives each new observation.
RESERVE_DECAY = 0.95
#: SQLite serialises every transaction (BEGIN IMMEDIATE); more requests in flight than this
#: only queue on its busy timeout, and the unlucky ones fail with "database is locked".
SQLITE_IN_FLIGHT = 4


@dataclass
class FinishReserve:
    """A decaying maximum of how long the work after the fan-out took (seconds)."""

    value: float = MIN_RESERVE

    def observe(self, seconds: float) -> None:
        self.value = max(MIN_RESERVE, seconds, self.value * RESERVE_DECAY)


@dataclass
class CreditRuntime:
    settings: Settings
    reader: ChainReader
    pools: PoolStateCache
    reserve: FinishReserve = field(default_factory=FinishReserve)
    #: What phase 1 (screen, score, read providers) has lately taken, admission wait excluded.
    prepare_reserve: FinishReserve = field(default_factory=FinishReserve)
    _clients: dict[int, tuple[asyncio.AbstractEventLoop, httpx.AsyncClient]] = field(
        default_factory=dict
    )

    _gates: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Semaphore]] = field(
        default_factory=dict
    )

    def budget_left(self, started: float) -> float:
        """What a request that arrived at `started` has left for its fan-out once phase 1 and
        the work after the fan-out (at what they have lately taken) are paid for. At or below
        zero the request is overloaded: it asks nobody, so phase 1 skips planning the calls."""
        left = self.settings.credit_fanout_deadline - (time.perf_counter() - started)
        return left - self.prepare_reserve.value - self.reserve.value

    def gate(self) -> asyncio.Semaphore:
        """The running loop's limit on credit requests in flight at once (at most one database
        connection each, so the limit stays within the connection pool).

        Past the point where the CPU is busy, more concurrent requests only thrash: they fight
        over the GIL and the connection pool, the event loop driving every fan-out starves,
        throughput collapses and the slowest requests run into the 30 s request timeout. Behind
        the gate a request waits holding no connection and no thread (it is taken before
        authentication), and its wait counts against its deadline: a long wait, fewer quotes.
        """
        loop = asyncio.get_running_loop()
        entry = self._gates.get(id(loop))
        if entry is None or entry[0] is not loop:
            pool = self.settings.db_pool_size + self.settings.db_max_overflow
            limit = min(self.settings.credit_max_in_flight, pool)
            if self.settings.effective_database_url.startswith("sqlite"):
                limit = min(limit, SQLITE_IN_FLIGHT)  # one writer at a time, whatever we do
            entry = (loop, asyncio.Semaphore(max(1, limit)))
            self._gates[id(loop)] = entry
        return entry[1]

    @classmethod
    def build(cls, settings: Settings, reader: ChainReader) -> CreditRuntime:
        return cls(
            settings, reader, PoolStateCache(reader, head_max_age=settings.credit_head_max_age)
        )

    def client(self) -> httpx.AsyncClient:
        """The running loop's shared client (created on first use)."""
        loop = asyncio.get_running_loop()
        for key, (owner, _client) in list(self._clients.items()):
            if owner.is_closed():  # a test client's loop that has ended
                del self._clients[key]
        entry = self._clients.get(id(loop))
        if entry is None:
            client = httpx.AsyncClient(
                timeout=self.settings.credit_provider_timeout,
                transport=AiohttpTransport(
                    max_connections=self.settings.credit_http_max_connections
                ),
            )
            entry = (loop, client)
            self._clients[id(loop)] = entry
        return entry[1]

    async def aclose(self) -> None:
        """Close the running loop's client (call from the app's shutdown)."""
        entry = self._clients.pop(id(asyncio.get_running_loop()), None)
        if entry is not None:
            await entry[1].aclose()
