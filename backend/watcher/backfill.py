"""Backfill: run the ingestion step over adaptive ranges until the cursor reaches finality.

Backfill and live ingestion are the same step on the same cursor, so the hand-off can neither
skip nor repeat a block: backfill stops at the finalized block, and the next live step starts at
cursor + 1. Each range is its own transaction, so an interrupted backfill resumes where it was.

While one final range is written, the next one is read on a helper thread (`prefetch`): the
node's work and the JSON decoding overlap PostgreSQL's. Only final blocks are read ahead (they
cannot be reorganised away meanwhile), the step still checks that a read-ahead range starts at
its cursor + 1, and a read that failed raises before the transaction of its range begins, so the
cursor stays at the last committed range. The unfinalised window is never prefetched.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from backend.db import SessionFactory, session_scope
from backend.watcher.ingest import ChainWatcher, FetchedRange, StepResult, start_cursor
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
    prefetch: bool = True,
) -> list[StepResult]:
    """Ingest from `from_block` (or the existing cursor) to the finalized block (or the head)."""
    ranges = ranges or AdaptiveRange()
    with session_scope(factory) as session:
        start_cursor(session, watcher.adapter, from_block=from_block)
    results: list[StepResult] = []
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backfill-prefetch")
    ahead: Future[FetchedRange] | None = None
    # The objects alive now (modules, web3, SQLAlchemy) outlive the backfill: keep the cyclic
    # collector from re-scanning them on every full collection triggered by the ranges' short-
    # lived rows (about a fifth of a 100,000-log backfill's time when measured). Undone below.
    gc.freeze()
    try:
        while True:
            fetched: FetchedRange | None = None
            if ahead is not None:
                try:
                    fetched = ahead.result()
                except LogQueryTooLarge:
                    ahead = None
                    if not ranges.shrink():
                        raise
                    continue  # the next step reads a smaller range itself
                ahead = None
                ranges.observe(len(fetched.logs))
                if results and fetched.last < results[-1].finalized:
                    ahead = _read_ahead(executor, watcher, ranges, fetched.last, results[-1])
            try:
                with session_scope(factory) as session:
                    result = watcher.step(session, span=ranges.span, prefetched=fetched)
            except LogQueryTooLarge:
                if not ranges.shrink():
                    raise
                continue
            results.append(result)
            if progress is not None:
                progress(result)
            if result.status == "advanced" and fetched is None:
                ranges.observe(result.logs)
            if ahead is not None and (fetched is None or result.cursor != fetched.last):
                _discard(ahead)  # the step did not store the range it was read ahead of
                ahead = None
            target = result.head if until_head else result.finalized
            if result.status != "advanced" and result.cursor >= target:
                return results
            if result.status == "advanced" and result.cursor >= target and not until_head:
                return results
            if (
                prefetch
                and ahead is None
                and result.status == "advanced"
                and result.cursor < result.finalized
            ):
                ahead = _read_ahead(executor, watcher, ranges, result.cursor, result)
    finally:
        if ahead is not None:
            _discard(ahead)
        executor.shutdown(wait=True, cancel_futures=True)
        gc.unfreeze()


def _read_ahead(
    executor: ThreadPoolExecutor,
    watcher: ChainWatcher,
    ranges: AdaptiveRange,
    cursor: int,
    known: StepResult,
) -> Future[FetchedRange]:
    """Start reading the final range after `cursor` (bounded by the finalized block we know)."""
    first = cursor + 1
    last = min(known.finalized, cursor + ranges.span)
    return executor.submit(watcher.fetch_range, first, last)


def _discard(ahead: Future[FetchedRange]) -> None:
    """Drop a read-ahead nobody will store; its error, if any, belongs to no range."""
    if not ahead.cancel():
        ahead.exception()
