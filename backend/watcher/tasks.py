"""Celery task `watcher.ingest` (beat); one writer per chain via the step's lock."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from backend.chains import chain_registry
from backend.config import Settings
from backend.db import SessionFactory
from backend.watcher.backfill import backfill
from backend.watcher.exceptions import ChainMoved
from backend.watcher.targets import watcher_for
from chain_adapters.exceptions import RPCUnavailable
from chain_adapters.registry import ChainConfig

logger = logging.getLogger(__name__)

#: Transient: the node may answer again, the chain may stop moving under us.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (RPCUnavailable, ChainMoved)


def ingest_chain(
    settings: Settings, factory: SessionFactory, chain: ChainConfig
) -> dict[str, Any] | None:
    """Bring one chain's cursor to its head; None if the suite is not deployed there.

    A transient error (node down, chain moved) ends this chain's turn with nothing written for
    the failed step (each step is its own transaction) and is reported, not raised: beat runs
    the task again within `watcher_interval`, which is the retry, and the other chains go on.
    The cursor's `updated_at` then stops moving, which is how the status reports the outage.
    """
    try:
        watcher = watcher_for(settings, chain)
        if watcher is None:
            return None
        results = backfill(
            factory, watcher, from_block=watcher.adapter.finalized_block(), until_head=True
        )
    except TRANSIENT_ERRORS as exc:
        logger.warning("watcher: chain %s not ingested this tick: %s", chain.name, exc)
        return {"error": type(exc).__name__, "detail": str(exc)}
    last = results[-1]
    return {"cursor": last.cursor, "head": last.head, "logs": sum(r.logs for r in results)}


@shared_task(name="watcher.ingest", bind=True)
def ingest(self: Any) -> dict[str, Any]:
    """Bring every watched chain's cursor to its head (each step is its own transaction).

    Idempotent and crash-safe: a redelivered message re-reads the committed cursor; a killed
    step's transaction never committed, so it is simply done again.
    """
    settings: Settings = self.app.settings
    report: dict[str, Any] = {}
    for chain in chain_registry(settings):
        outcome = ingest_chain(settings, self.app.session_factory, chain)
        if outcome is not None:
            report[str(chain.chain_id)] = outcome
    return report
