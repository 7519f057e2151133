"""DeFi pool state read once per (chain, pool, block), shared by every request of the process.

Why: a pool's books only change when a block is mined, yet 200 concurrent credit requests each
reading `totalSupplied`, `totalBorrowed` and the rate model would send 200 x 8 identical
eth_calls per block. Here the first request to need a pool at a block reads it (every call
pinned to that block number, so the reading is one consistent state) and every other request
that wants the same (chain, pool, block) awaits that same read (single flight), then prices its
own amount with our copy of the rate model (`pricing.defi_rates`).

How the head is learnt cheaply: one `eth_blockNumber` per chain per `head_max_age` seconds,
shared in the same way. A request may therefore price on a block at most `head_max_age` old;
acceptance re-reads the rate and refuses a drift beyond the borrower's tolerance, so staleness
is bounded and checked where it matters.

The model copy is checked against the contract once per block instead of once per request: the
contract's own `borrowRateAfter` is read at probe amounts (1 unit, half and all of the idle
cash, so below and past the kink) and must agree to the wei of ray with our model, else every
quote of that pool at that block is an error, as before.

All state is in-process (API replicas stay stateless); it is bound to the event loop that serves
requests, and in-flight reads are keyed by loop so a test client's short-lived loops never await
a future of a loop that is gone.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from backend.credit.chain import POOL_ABI, ChainReader
from backend.credit.pricing.defi_rates import KinkedRateModel, PoolState, borrow_rate_after
from chain_adapters.base import ContractCall

T = TypeVar("T")


@dataclass(frozen=True)
class PoolReading:
    """One pool at one block: the model, the books, and the contract's rate at probe amounts."""

    chain_id: int
    pool: str
    block: int
    model: KinkedRateModel
    state: PoolState
    probes: tuple[tuple[int, int], ...]  # (amount, the contract's borrowRateAfter(amount))

    def model_disagreement(self) -> str | None:
        """Why our model copy is wrong for this pool (None: it agrees at every probe)."""
        for amount, contract_rate in self.probes:
            ours = borrow_rate_after(self.model, self.state, amount)
            if ours != contract_rate:
                return (
                    f"pool {self.pool} says borrowRateAfter({amount})={contract_rate} at block "
                    f"{self.block}, our model {ours}"
                )
        return None


@dataclass
class CacheStats:
    """What the cache saved: real RPC reads made vs reads served from memory."""

    head_reads: int = 0
    pool_reads: int = 0
    pool_hits: int = 0
    value_reads: int = 0  # per-block values (feed prices, gas price): real reads
    value_hits: int = 0


@dataclass
class _Head:
    number: int
    read_at: float


@dataclass
class PoolStateCache:
    """Per-process cache of pool readings keyed by (chain, pool, block); see the module doc."""

    reader: ChainReader
    head_max_age: float = 0.5
    keep_blocks: int = 8
    clock: Callable[[], float] = time.monotonic
    stats: CacheStats = field(default_factory=CacheStats)
    _heads: dict[int, _Head] = field(default_factory=dict)
    _readings: OrderedDict[tuple[int, str, int], PoolReading] = field(default_factory=OrderedDict)
    _inflight: dict[tuple[Any, ...], asyncio.Future[Any]] = field(default_factory=dict)
    _values: OrderedDict[tuple[Any, ...], Any] = field(default_factory=OrderedDict)

    async def head(self, chain_id: int) -> int:
        """The chain's head, read at most once per `head_max_age` however many ask."""
        known = self._heads.get(chain_id)
        if known is not None and self.clock() - known.read_at < self.head_max_age:
            return known.number
        return await self._single_flight(("head", chain_id), lambda: self._read_head(chain_id))

    async def reading(self, chain_id: int, pool: str) -> PoolReading:
        """The pool at the current head: read once per block for all concurrent callers."""
        block = await self.head(chain_id)
        key = (chain_id, pool.lower(), block)
        cached = self._readings.get(key)
        if cached is not None:
            self.stats.pool_hits += 1
            return cached
        return await self._single_flight(("pool", *key), lambda: self._read_pool(*key))

    async def per_block(self, chain_id: int, name: tuple[Any, ...], read: Callable[[int], T]) -> T:
        """`read(block)` (blocking, run in a thread) once per (chain, `name`, block) for every
        request of the process: what the market reads besides pools (a feed's price, the gas
        price) changes only with a block, like a pool's books."""
        block = await self.head(chain_id)
        key = (chain_id, *name, block)
        if key in self._values:
            self.stats.value_hits += 1
            cached: T = self._values[key]
            return cached

        async def fetch() -> T:
            value = await asyncio.to_thread(read, block)
            self.stats.value_reads += 1
            self._values[key] = value
            while len(self._values) > self.keep_blocks * 64:
                self._values.popitem(last=False)
            return value

        return await self._single_flight(("value", *key), fetch)

    async def _single_flight(self, key: tuple[Any, ...], read: Callable[[], Awaitable[T]]) -> T:
        loop = asyncio.get_running_loop()
        flight_key = (id(loop), *key)
        running = self._inflight.get(flight_key)
        if running is not None:
            result: T = await asyncio.shield(running)
            return result
        future: asyncio.Future[T] = loop.create_future()
        self._inflight[flight_key] = future
        try:
            value = await read()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        else:
            future.set_result(value)
            return value
        finally:
            del self._inflight[flight_key]

    async def _read_head(self, chain_id: int) -> int:
        number = await asyncio.to_thread(self.reader.adapter(chain_id).head)
        self.stats.head_reads += 1
        known = self._heads.get(chain_id)
        if known is None or number >= known.number:  # never step back on a lagging node
            self._heads[chain_id] = _Head(number, self.clock())
            return number
        known.read_at = self.clock()
        return known.number

    async def _read_pool(self, chain_id: int, pool: str, block: int) -> PoolReading:
        reading = await asyncio.to_thread(read_pool_at, self.reader, chain_id, pool, block)
        self.stats.pool_reads += 1
        self._readings[(chain_id, pool, block)] = reading
        while len(self._readings) > self.keep_blocks * 64:
            self._readings.popitem(last=False)
        return reading


def read_pool_at(reader: ChainReader, chain_id: int, pool: str, block: int) -> PoolReading:
    """Every read of a pool's reading, pinned to `block` (one consistent state)."""
    adapter = reader.adapter(chain_id)

    def read(fn: str, *args: Any) -> int:
        return int(adapter.call(ContractCall(pool, POOL_ABI, fn, args), block=block))

    model = KinkedRateModel(
        base_rate=read("baseRate"),
        slope1=read("slope1"),
        slope2=read("slope2"),
        optimal_utilization=read("optimalUtilization"),
    )
    state = PoolState(total_supplied=read("totalSupplied"), total_borrowed=read("totalBorrowed"))
    amounts = sorted({1, max(1, state.cash // 2), state.cash}) if state.cash > 0 else []
    probes = tuple((amount, read("borrowRateAfter", amount)) for amount in amounts)
    return PoolReading(chain_id, pool, block, model, state, probes)
