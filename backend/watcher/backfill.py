"""Backfill: run the ingestion step over adaptive ranges until the cursor reaches finality.

Backfill and live ingestion are the same step on the same cursor, so the hand-off can neither
skip nor repeat a block: backfill stops at the finalized block, and the next live step starts at
cursor + 1. Each range is its own transaction, so an interrupted backfill resumes where it was.
"""

from __future__ import annotations

from collections.abc import Callable

from backend.db import SessionFactory, session_scope
from backend.watcher.ingest import ChainWatcher, StepResult, start_cursor
from backend.watcher.ranges import AdaptiveRange
from chain_adapters.base import LogQueryTooLarge

Progress = Callable[[StepResult], None]


def backfill(
    factory: SessionFactory,
    watcher: ChainWatcher,
    *,
    from_block: int,
    ranges: AdaptiveRange | None = None,
    until_head: bool = False,
    progress: Progress | None = None,
) -> list[StepResult]:
    """Ingest from `from_block` (or the existing cursor) to the finalized block (or the head)."""
    ranges = ranges or AdaptiveRange()
    with session_scope(factory) as session:
        start_cursor(session, watcher.adapter, from_block=from_block)
    results: list[StepResult] = []
    while True:
        try:
            with session_scope(factory) as session:
                result = watcher.step(session, span=ranges.span)
        except LogQueryTooLarge:
            if not ranges.shrink():
                raise
            continue
        results.append(result)
        if progress is not None:
            progress(result)
        if result.status == "advanced":
            ranges.grow()
        target = result.head if until_head else result.finalized
        if result.status != "advanced" and result.cursor >= target:
            return results
        if result.status == "advanced" and result.cursor >= target and not until_head:
            return results
