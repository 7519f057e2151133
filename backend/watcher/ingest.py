"""One ingestion step of one chain: reorg check, headers, logs, effects, cursor — one transaction.

The step is the only writer code path; live ticks (`watcher.ingest`), backfill and the crash
tests all run it. Whatever it stores, it stores in the caller's transaction together with the
cursor that covers it, so a crash anywhere leaves either all of a step or none of it.

Two modes, picked by where the cursor is:
* range mode (next block <= finalized): one `eth_getLogs` over up to `span` final blocks and one
  header (the range end, which becomes the cursor); final blocks cannot be reorganised away.
* live mode (next block above finalized): every header of up to `live_batch` blocks is fetched
  and stored, linked by parent hash to the cursor, and every log must name one of those hashes;
  otherwise the chain moved while we read and the step is abandoned (ChainMoved).

Before either, an address new to the watch list has its logs of the blocks already ingested
stored first (backend/watcher/history.py), so the list can grow without leaving a gap.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.orm import Session

from backend.kit.columns import utcnow
from backend.watcher.exceptions import ChainMoved, NotStarted
from backend.watcher.history import catch_up_targets
from backend.watcher.models import WatcherCursor
from backend.watcher.projections import DecodedLog, ProjectionRegistry, RawLogRow, raw_rows
from backend.watcher.reorg import reconcile
from backend.watcher.repository import WatcherRepository
from chain_adapters.base import Block, ChainAdapter, Log

logger = logging.getLogger(__name__)

ZERO_HASH = "0x" + "00" * 32


@dataclass
class StepResult:
    chain_id: int
    status: Literal["busy", "idle", "advanced"]
    cursor: int = -1
    head: int = -1
    finalized: int = -1
    first: int | None = None
    last: int | None = None
    logs: int = 0
    final_delivered: int = 0
    reorg_depth: int = 0
    seconds: float = 0.0
    extra: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class FetchedRange:
    """A final range read ahead of the transaction that stores it (the backfill's prefetch).

    Only final blocks are read ahead: they cannot be reorganised away between the read and the
    write, so using the read later stores exactly what a synchronous step would have stored.
    Everything that needs no database (sorting, the rows of `watcher_logs`, event decoding) is
    done by the reader, so the writer only writes.
    """

    first: int
    last: int
    logs: list[Log]
    header: Block
    rows: list[RawLogRow]
    decoded: list[DecodedLog]


def start_cursor(session: Session, adapter: ChainAdapter, *, from_block: int) -> WatcherCursor:
    """Create the chain's cursor just before `from_block` (idempotent if it already exists)."""
    repo = WatcherRepository(session)
    existing = repo.cursor(adapter.chain_id)
    if existing is not None:
        return existing
    if from_block > 0:
        before = adapter.block(from_block - 1)
        repo.add_headers(adapter.chain_id, [before])
        number, block_hash = before.number, before.hash
    else:
        number, block_hash = -1, ZERO_HASH
    return repo.add_cursor(
        WatcherCursor(
            chain_id=adapter.chain_id,
            block_number=number,
            block_hash=block_hash,
            final_number=number,
            start_block=from_block,
            reorg_count=0,
            logs_ingested=0,
            updated_at=utcnow(),
        )
    )


class ChainWatcher:
    """Ingests one chain's logs of `addresses` and feeds `registry`'s projections."""

    def __init__(
        self,
        adapter: ChainAdapter,
        addresses: list[str],
        registry: ProjectionRegistry,
        *,
        live_batch: int = 50,
    ) -> None:
        if not addresses:
            raise ValueError(f"[{adapter.chain.name}] no contract addresses to watch")
        self.adapter = adapter
        self.addresses = sorted({a.lower() for a in addresses})
        self.registry = registry
        self.live_batch = live_batch

    @property
    def chain_id(self) -> int:
        return self.adapter.chain_id

    def fetch_range(self, first: int, last: int) -> FetchedRange:
        """Read the logs and the end header of final blocks first..last (no database access).

        Thread-safe with respect to the step: it touches only the adapter, so the backfill runs
        it on a helper thread while the previous range is being written.
        """
        logs = self.adapter.fetch_logs(from_block=first, to_block=last, address=self.addresses)
        header = self.adapter.block(last)
        logs.sort(key=lambda log: (log.block_number, log.log_index))
        rows = raw_rows(self.chain_id, logs)
        decoded = self.registry.decode(rows)
        return FetchedRange(first, last, logs, header, rows, decoded)

    def step(
        self, session: Session, *, span: int = 2_000, prefetched: FetchedRange | None = None
    ) -> StepResult:
        """Advance the cursor by at most one range (final) or one live batch; flush only.

        `prefetched` is used only if it is the range that comes next (it starts at cursor + 1)
        and is still entirely final; otherwise it is ignored and the step reads the node itself.
        """
        started = time.perf_counter()
        repo = WatcherRepository(session)
        if not repo.try_lock_chain(self.chain_id):
            return StepResult(self.chain_id, "busy")
        cursor = repo.cursor(self.chain_id)
        if cursor is None:
            raise NotStarted(
                f"chain {self.chain_id} has no watcher cursor",
                hint="run `credagg watcher backfill --chain NAME --from BLOCK` once",
            )
        head = self.adapter.head()
        finalized = min(self.adapter.finalized_block(), head)
        depth = reconcile(repo, self.adapter, cursor, head=head)
        result = StepResult(
            self.chain_id, "idle", head=head, finalized=finalized, reorg_depth=depth
        )
        history = catch_up_targets(repo, self.adapter, self.registry, cursor, self.addresses)
        if history:
            result.extra["history_logs"] = history
        first = cursor.block_number + 1
        fresh: list[DecodedLog] = []
        if first <= head:
            ahead: FetchedRange | None = None
            if first <= finalized:
                if (
                    prefetched is not None
                    and prefetched.first == first <= prefetched.last <= finalized
                ):
                    last, headers, ahead = prefetched.last, [prefetched.header], prefetched
                if ahead is None:
                    last = min(finalized, cursor.block_number + span)
                    headers = [self.adapter.block(last)]
            else:
                last = min(head, cursor.block_number + min(span, self.live_batch))
                headers = self._linked_headers(cursor, first, last)
            before = cursor.logs_ingested
            fresh = self._ingest(repo, cursor, first, last, headers, ahead)
            result.status, result.first, result.last = "advanced", first, last
            result.logs = cursor.logs_ingested - before
        result.final_delivered = self._deliver_final(repo, cursor, finalized, fresh, first)
        cursor.head, cursor.finalized, cursor.updated_at = head, finalized, utcnow()
        repo.prune_headers(self.chain_id, below=min(finalized, cursor.block_number))
        session.flush()
        result.cursor = cursor.block_number
        result.seconds = time.perf_counter() - started
        return result

    def _linked_headers(self, cursor: WatcherCursor, first: int, last: int) -> list[Block]:
        headers = [self.adapter.block(n) for n in range(first, last + 1)]
        expected = cursor.block_hash
        for header in headers:
            if expected != ZERO_HASH and header.parent_hash != expected:
                raise ChainMoved(
                    f"chain {self.chain_id}: block {header.number} does not extend "
                    f"{expected}; retrying next step"
                )
            expected = header.hash
        return headers

    def _ingest(
        self,
        repo: WatcherRepository,
        cursor: WatcherCursor,
        first: int,
        last: int,
        headers: list[Block],
        ahead: FetchedRange | None = None,
    ) -> list[DecodedLog]:
        if ahead is not None:
            logs = ahead.logs
        else:
            logs = self.adapter.fetch_logs(from_block=first, to_block=last, address=self.addresses)
        hashes = {h.number: h.hash for h in headers}
        for log in logs:
            known = hashes.get(log.block_number)
            if (known is not None and log.block_hash != known) or log.removed:
                raise ChainMoved(
                    f"chain {self.chain_id}: log in block {log.block_number} is from another "
                    "fork than its header; retrying next step"
                )
        if ahead is not None:  # sorted, converted and decoded by the reader
            rows, decoded = ahead.rows, ahead.decoded
        else:
            logs.sort(key=lambda log: (log.block_number, log.log_index))
            rows = raw_rows(self.chain_id, logs)
            decoded = self.registry.decode(rows)
        repo.add_rows(rows)
        repo.add_headers(self.chain_id, headers)
        self.registry.deliver(repo.session, "head", decoded)
        cursor.block_number, cursor.block_hash = last, headers[-1].hash
        cursor.logs_ingested += len(rows)
        return decoded

    def _deliver_final(
        self,
        repo: WatcherRepository,
        cursor: WatcherCursor,
        finalized: int,
        fresh: list[DecodedLog],
        fresh_first: int,
    ) -> int:
        """Deliver logs of blocks that became final to final-phase projections, exactly once.

        Exactly once because `final_number` moves in the same transaction as the deliveries.
        """
        upto = min(finalized, cursor.block_number)
        if upto <= cursor.final_number:
            return 0
        if cursor.final_number == fresh_first - 1:  # all newly final logs are in hand
            logs = [log for log in fresh if log.block_number <= upto]
        else:
            logs = self.registry.decode(
                repo.logs_between(self.chain_id, cursor.final_number + 1, upto)
            )
        delivered = self.registry.deliver(repo.session, "final", logs)
        cursor.final_number = upto
        return delivered
