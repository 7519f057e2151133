"""Reorg handling: find the common ancestor by hash, undo everything above it.

Runs at the start of every step, inside the step's transaction, so the undo and the re-ingestion
of the canonical blocks commit together (or not at all).
"""

from __future__ import annotations

import logging

from backend.kit.columns import utcnow
from backend.watcher.exceptions import DeepReorg
from backend.watcher.models import WatcherCursor
from backend.watcher.repository import WatcherRepository
from chain_adapters.base import ChainAdapter

logger = logging.getLogger(__name__)


def reconcile(
    repo: WatcherRepository, adapter: ChainAdapter, cursor: WatcherCursor, *, head: int
) -> int:
    """Rewind `cursor` to the common ancestor if its block left the canonical chain.

    Returns the reorg depth (blocks orphaned; 0 if none). The walk compares each stored header
    with the node's block at that height, newest first. A `anvil_reorg` keeps the height (same
    number, new hash) and `anvil_rollback` lowers it; both end here.
    """
    if cursor.block_number < 0:  # before genesis: nothing to orphan
        return 0
    if cursor.block_number <= head and adapter.block(cursor.block_number).hash == cursor.block_hash:
        return 0
    ancestor: tuple[int, str] | None = None
    for header in repo.headers_desc(cursor.chain_id, at_most=cursor.block_number):
        if header.number <= head and adapter.block(header.number).hash == header.hash:
            ancestor = (header.number, header.hash)
            break
    if ancestor is None:
        raise DeepReorg(
            f"chain {cursor.chain_id}: no stored header from block {cursor.block_number} down is "
            "canonical; run `credagg watcher backfill` from before the fork"
        )
    number, block_hash = ancestor
    depth = cursor.block_number - number
    repo.delete_after(cursor.chain_id, number)
    if cursor.final_number > number:
        # A block we treated as final was replaced: the finality rule is too weak for this
        # chain. Its final effects were deleted with its logs; they are re-delivered below.
        logger.error(
            "chain %s: reorg of depth %s reached final block %s; raise confirmations",
            cursor.chain_id,
            depth,
            cursor.final_number,
        )
        cursor.final_number = number
    cursor.block_number = number
    cursor.block_hash = block_hash
    cursor.reorg_count += 1
    cursor.last_reorg_depth = depth
    cursor.last_reorg_at = utcnow()
    logger.warning("chain %s: reorg of depth %s, back to block %s", cursor.chain_id, depth, number)
    return depth
