"""Celery tasks of the receipts domain: `receipts.anchor` (run by beat, idempotent)."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from backend.chains import chain_registry, deployments_dir, identities
from backend.config import Settings
from backend.kit.columns import utcnow
from backend.kit.locks import try_exclusive
from backend.receipts.anchoring import (
    AnchorRecord,
    AnchorSchedule,
    AnchorTargets,
    due,
    plan_anchor,
    record_anchors,
    refresh,
    send_anchors,
)
from backend.receipts.service import signer_from_settings
from backend.worker import CredaggCelery, task_session
from chain_adapters.base import ABI
from chain_adapters.compiler import compile_project
from chain_adapters.deploy import load_manifest
from chain_adapters.evm.adapter import EvmAdapter
from chain_adapters.exceptions import ChainConfigError, RPCUnavailable
from chain_adapters.suite import RECEIPT_ANCHOR

logger = logging.getLogger(__name__)

#: Errors worth retrying: the chain may answer again. Anything else is a bug or a conflict
#: that a retry would only repeat (the next beat tick runs the task again anyway).
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (RPCUnavailable,)

#: One anchoring run at a time across every worker: two would race to anchor the same size and
#: the slower one would fail on the contract's strictly-increasing rule (or the unique index).
ANCHOR_LOCK = "receipts.anchor"


def anchor_policy(settings: Settings) -> AnchorSchedule:
    """When to anchor: `CREDAGG_ANCHOR_MAX_AGE_SECONDS` / `CREDAGG_ANCHOR_MAX_RECEIPTS`."""
    return AnchorSchedule(
        max_age_seconds=settings.anchor_max_age_seconds,
        max_receipts=settings.anchor_max_receipts,
        check_interval_seconds=settings.anchor_check_interval,
    )


def anchor_abi() -> ABI:
    return compile_project().get(RECEIPT_ANCHOR).abi


def build_targets(settings: Settings, engine: Engine) -> AnchorTargets:
    """Every configured chain with a deployed ReceiptAnchor, as (operator adapter, address)."""
    targets: dict[int, tuple[EvmAdapter, str]] = {}
    for chain in chain_registry(settings):
        manifest = load_manifest(deployments_dir(settings), chain.name)
        entry = manifest.get("contracts", {}).get(RECEIPT_ANCHOR)
        if entry is None:
            logger.warning("[%s] no %s deployed; not anchoring there", chain.name, RECEIPT_ANCHOR)
            continue
        operator = identities(settings, chain).operator
        targets[chain.chain_id] = (
            EvmAdapter(chain, engine=engine, signer=operator),
            str(entry["address"]),
        )
    if not targets:
        raise ChainConfigError(f"no chain has a deployed {RECEIPT_ANCHOR} to anchor on")
    return targets


def run_anchoring(session: Session, settings: Settings) -> dict[str, Any]:
    """One tick: follow recorded anchors, then anchor the log if it is due."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    targets = build_targets(settings, engine)
    abi = anchor_abi()
    changed = refresh(session, targets)
    now = utcnow()
    anchored: list[AnchorRecord] = []
    if due(session, anchor_policy(settings), now, chain_ids=list(targets)):
        plan = plan_anchor(
            session, signer=signer_from_settings(settings), adapters=targets, now=now
        )
        # Release the transaction before sending: the adapters persist nonces and signed
        # transactions in this same database, and on SQLite an open transaction holds its only
        # write lock. A crash from here on loses nothing: the next run finds the anchor on-chain.
        session.commit()
        anchored = record_anchors(session, send_anchors(plan, adapters=targets, abi=abi))
    return {
        "refreshed": [
            {"chain_id": r.chain_id, "size": r.tree_size, "status": r.status} for r in changed
        ],
        "anchored": [
            {"chain_id": r.chain_id, "size": r.tree_size, "tx": r.tx_hash, "sent": r.sent}
            for r in anchored
        ],
    }


@shared_task(
    name="receipts.anchor",
    bind=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
)
def anchor(self: Any) -> dict[str, Any]:
    """Refresh recorded anchors and anchor the log when due (see backend.receipts.anchoring).

    Idempotent: the chain is read before anything is sent, so a redelivered message (late ack
    after a worker died) records what the dead run sent instead of sending it again.
    """
    app: CredaggCelery = self.app
    with try_exclusive(app.engine, ANCHOR_LOCK) as held:
        if not held:
            logger.info("another anchoring run holds the lock; skipping this tick")
            return {
                "skipped": "another anchoring run is in progress",
                "refreshed": [],
                "anchored": [],
            }
        with task_session(app) as session:
            return run_anchoring(session, app.settings)
