"""Celery task `watcher.ingest` (beat); one writer per chain via the step's lock."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from backend.watcher.backfill import backfill
from backend.watcher.exceptions import ChainMoved
from backend.watcher.targets import watchers
from chain_adapters.exceptions import RPCUnavailable

logger = logging.getLogger(__name__)

#: Transient: the node may answer again, the chain may stop moving under us.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (RPCUnavailable, ChainMoved)


@shared_task(
    name="watcher.ingest",
    bind=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=5,
)
def ingest(self: Any) -> dict[str, Any]:
    """Bring every watched chain's cursor to its head (each step is its own transaction).

    Idempotent and crash-safe: a redelivered message re-reads the committed cursor; a killed
    step's transaction never committed, so it is simply done again.
    """
    factory = self.app.session_factory
    report: dict[str, Any] = {}
    for watcher in watchers(self.app.settings):
        results = backfill(
            factory, watcher, from_block=watcher.adapter.finalized_block(), until_head=True
        )
        last = results[-1]
        report[str(watcher.chain_id)] = {
            "cursor": last.cursor,
            "head": last.head,
            "logs": sum(r.logs for r in results),
        }
    return report
