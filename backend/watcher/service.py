"""Read side of the watcher for the API and metrics: per-chain status from the cursors."""

from __future__ import annotations

from sqlalchemy.orm import Session

from backend.watcher.repository import WatcherRepository
from backend.watcher.schemas import ChainStatus
from chain_adapters.registry import ChainRegistry


def chain_statuses(session: Session, chains: ChainRegistry | None) -> list[ChainStatus]:
    """One entry per chain with a cursor. Head and lag are as of the chain's last step: the
    API never waits on an RPC node (a node outage shows as a growing `updated_at` age)."""
    names = {c.chain_id: c.name for c in chains} if chains is not None else {}
    return [
        ChainStatus(
            chain_id=c.chain_id,
            name=names.get(c.chain_id),
            head=c.head,
            cursor=c.block_number,
            lag=None if c.head is None else max(c.head - c.block_number, 0),
            finalized=c.finalized,
            final_delivered=c.final_number,
            logs_ingested=c.logs_ingested,
            reorg_count=c.reorg_count,
            last_reorg_depth=c.last_reorg_depth,
            last_reorg_at=c.last_reorg_at,
            updated_at=c.updated_at,
        )
        for c in WatcherRepository(session).all_cursors()
    ]
