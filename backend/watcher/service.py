"""Read side of the watcher for the API and metrics: per-chain status from the cursors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from backend.kit.columns import utcnow
from backend.watcher.models import WatcherCursor
from backend.watcher.repository import WatcherRepository
from backend.watcher.schemas import ChainStatus
from chain_adapters.registry import ChainConfig, ChainRegistry

#: A chain counts as unreachable when its last successful step is older than this many block
#: times (and at least STALE_FLOOR): beat ticks every `watcher_interval` (1 s by default), so a
#: healthy watcher refreshes its cursor's `updated_at` every block or faster.
STALE_BLOCKS = 5
STALE_FLOOR = timedelta(seconds=10)


@dataclass(frozen=True)
class ChainHealth:
    """The status of one chain as the service computes it (the API shape is ChainStatus).

    `head` and `lag` are as of the last successful step: the API never waits on an RPC node.
    While no step succeeds (node unreachable, or no worker running), `rpc_unavailable` is true
    and `rpc_unavailable_since` is the time of the last successful read, so the outage's
    length is `now - rpc_unavailable_since` and keeps growing until ingestion resumes.
    """

    cursor: WatcherCursor
    name: str | None
    lag: int | None
    rpc_unavailable: bool
    rpc_unavailable_since: datetime | None
    stale_seconds: float


def stale_after(chain: ChainConfig | None) -> timedelta:
    """How old the last successful step may be before the chain is reported unreachable."""
    if chain is None:
        return STALE_FLOOR
    return max(STALE_FLOOR, timedelta(seconds=STALE_BLOCKS * chain.block_time))


def chain_health(
    session: Session, chains: ChainRegistry | None, *, now: datetime | None = None
) -> list[ChainHealth]:
    """One entry per chain with a cursor, judged at `now` (default: the current time)."""
    now = now or utcnow()
    configs = {c.chain_id: c for c in chains} if chains is not None else {}
    found: list[ChainHealth] = []
    for c in WatcherRepository(session).all_cursors():
        config = configs.get(c.chain_id)
        age = now - c.updated_at
        unavailable = age > stale_after(config)
        found.append(
            ChainHealth(
                cursor=c,
                name=config.name if config is not None else None,
                lag=None if c.head is None else max(c.head - c.block_number, 0),
                rpc_unavailable=unavailable,
                rpc_unavailable_since=c.updated_at if unavailable else None,
                stale_seconds=max(age.total_seconds(), 0.0),
            )
        )
    return found


def chain_statuses(session: Session, chains: ChainRegistry | None) -> list[ChainStatus]:
    """The API view of `chain_health` (fields the schema does not declare are dropped)."""
    return [
        ChainStatus.model_validate(
            {
                "chain_id": h.cursor.chain_id,
                "name": h.name,
                "head": h.cursor.head,
                "cursor": h.cursor.block_number,
                "lag": h.lag,
                "finalized": h.cursor.finalized,
                "final_delivered": h.cursor.final_number,
                "logs_ingested": h.cursor.logs_ingested,
                "reorg_count": h.cursor.reorg_count,
                "last_reorg_depth": h.cursor.last_reorg_depth,
                "last_reorg_at": h.cursor.last_reorg_at,
                "updated_at": h.cursor.updated_at,
                "rpc_unavailable": h.rpc_unavailable,
                "rpc_unavailable_since": h.rpc_unavailable_since,
                "stale_seconds": h.stale_seconds,
            }
        )
        for h in chain_health(session, chains)
    ]
