"""Recompute every projection of a chain from the stored raw logs (`credagg watcher rebuild`).

Effects are a pure function of (stored logs, final_number): head projections of every stored
log, final projections of the logs at or below `final_number`. Rebuilding therefore must give
the incrementally maintained state, which is what the reorg and crash tests assert.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from backend.watcher.exceptions import NotStarted
from backend.watcher.projections import ProjectionRegistry
from backend.watcher.repository import WatcherRepository

CHUNK_BLOCKS = 10_000


def rebuild(session: Session, chain_id: int, registry: ProjectionRegistry) -> int:
    """Drop and replay every projection's effects on `chain_id`; return the logs replayed."""
    repo = WatcherRepository(session)
    if not repo.try_lock_chain(chain_id):
        raise NotStarted(
            f"chain {chain_id} is being ingested right now",
            hint="retry when the running step has committed (a few seconds)",
        )
    cursor = repo.cursor(chain_id)
    if cursor is None:
        raise NotStarted(
            f"chain {chain_id} has no watcher cursor",
            hint="run `credagg watcher backfill --chain NAME --from BLOCK` first",
        )
    for projection in registry:
        projection.reset(session, chain_id)
    replayed = 0
    first = cursor.start_block
    while first <= cursor.block_number:
        last = min(cursor.block_number, first + CHUNK_BLOCKS - 1)
        logs = registry.decode(repo.logs_between(chain_id, first, last))
        registry.deliver(session, "head", logs)
        registry.deliver(
            session, "final", [log for log in logs if log.block_number <= cursor.final_number]
        )
        replayed += len(logs)
        first = last + 1
    session.flush()
    return replayed
