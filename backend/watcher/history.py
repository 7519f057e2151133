"""A watch list that grows: backfill a new target's earlier logs before ingestion goes on.

The watch list of a chain is the suite plus the price feeds its CollateralManager is configured
with (backend/watcher/targets.py), so it grows when governance configures an asset. Ingestion
reads only the blocks after the cursor, so without this a feed added later would have no stored
history: its last price before the cursor (often set before `AssetConfigured`, and the one the
health factors of the next blocks depend on) would be missing, and so would any of its updates
in blocks ingested before the feed was noticed.

So every step first compares its watch list with `watcher_targets` (the addresses whose logs are
stored from the cursor's start block up to the cursor). A new address has its logs of exactly
those blocks fetched and stored, is recorded, and the projections are rebuilt from the stored
logs, all in the step's transaction, before the step ingests the blocks after the cursor with
the whole list. Stored logs then equal what a watcher that knew the address from the start would
have stored: no gap (every block up to the cursor was read for it, every block after it is read
by the step) and no duplicate (each block range is read once per address). The rebuild is what
keeps incremental state equal to a rebuild: older prices change the health factors, and the
alerts, of every later log. It is a full replay, which is acceptable for a governance action;
the alert deliveries' insert-if-absent ledger keeps webhooks sent once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from backend.watcher.exceptions import ChainMoved
from backend.watcher.models import WatcherCursor
from backend.watcher.projections import ProjectionRegistry
from backend.watcher.ranges import AdaptiveRange
from backend.watcher.rebuild import rebuild
from backend.watcher.repository import WatcherRepository
from chain_adapters.base import ChainAdapter, Log, LogQueryTooLarge

#: Blocks per `eth_getLogs` of a new target's history to start with (adaptive from there).
HISTORY_SPAN = 10_000


def catch_up_targets(
    repo: WatcherRepository,
    adapter: ChainAdapter,
    registry: ProjectionRegistry,
    cursor: WatcherCursor,
    addresses: Sequence[str],
) -> int:
    """Record every address of `addresses`, backfilling new ones first; return logs stored.

    Runs under the chain's writer lock, after the reorg check (so the cursor's block is
    canonical). Raises ChainMoved, with nothing stored, if a fetched log is from another fork
    than a stored header of the unfinalised window.
    """
    chain_id = cursor.chain_id
    known = repo.targets(chain_id)
    new = sorted({a.lower() for a in addresses} - known)
    if not new:
        return 0
    if not known or cursor.block_number < cursor.start_block:
        # Nothing ingested yet, or a cursor from before targets were recorded: this watch list
        # is the one its stored logs were read with.
        repo.add_targets(chain_id, dict.fromkeys(new, 0), since_block=cursor.block_number)
        return 0
    logs = _history(adapter, new, cursor.start_block, cursor.block_number)
    canonical = {h.number: h.hash for h in repo.headers_desc(chain_id, at_most=cursor.block_number)}
    for log in logs:
        known_hash = canonical.get(log.block_number)
        if log.removed or (known_hash is not None and log.block_hash != known_hash):
            raise ChainMoved(
                f"chain {chain_id}: history of a new target has a log of block "
                f"{log.block_number} from another fork; retrying next step"
            )
    logs.sort(key=lambda log: (log.block_number, log.log_index))
    repo.add_logs(chain_id, logs)
    counts = Counter(log.address.lower() for log in logs)
    repo.add_targets(chain_id, {a: counts[a] for a in new}, since_block=cursor.block_number)
    cursor.logs_ingested += len(logs)
    if logs:
        repo.session.flush()
        rebuild(repo.session, chain_id, registry)
    return len(logs)


def _history(adapter: ChainAdapter, addresses: list[str], first: int, last: int) -> list[Log]:
    """The logs of `addresses` in blocks first..last, over ranges the provider accepts."""
    ranges = AdaptiveRange(span=HISTORY_SPAN, maximum=max(HISTORY_SPAN, 100_000))
    logs: list[Log] = []
    start = first
    while start <= last:
        end = min(last, start + ranges.span - 1)
        try:
            found = adapter.fetch_logs(from_block=start, to_block=end, address=addresses)
        except LogQueryTooLarge:
            if not ranges.shrink():
                raise
            continue
        ranges.observe(len(found))
        logs.extend(found)
        start = end + 1
    return logs
