"""The `anchors` projections: ReceiptAnchor's `Anchored` at the head and once final.

Small on purpose: they prove the framework (per-log effects, both phases) on a real suite
event. The aggregate, the latest anchored size per chain, is a query over the effect rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.watcher.bulk import bulk_insert
from backend.watcher.events import EventSpec
from backend.watcher.models import AnchoredEffect, FinalAnchoredEffect
from backend.watcher.projections import DecodedLog, Projection

ANCHORED = EventSpec.parse(
    "Anchored(uint64 indexed treeSize, bytes32 root, uint64 prevSize, bytes32 prevRoot)"
)


class AnchorsProjection(Projection):
    name = "anchors"
    phase = "head"
    events = (ANCHORED,)
    effect_models = (AnchoredEffect,)

    def apply(self, session: Session, log: DecodedLog) -> None:
        self.apply_many(session, [log])

    def apply_many(self, session: Session, logs: Sequence[DecodedLog]) -> None:
        bulk_insert(
            session,
            AnchoredEffect.__table__,
            [
                {
                    **log.key,
                    "block_number": log.block_number,
                    "contract": log.address,
                    "tree_size": int(log.args["treeSize"]),
                    "root": bytes(log.args["root"]),
                    "prev_size": int(log.args["prevSize"]),
                }
                for log in logs
            ],
        )


class FinalAnchorsProjection(Projection):
    name = "final_anchors"
    phase = "final"
    events = (ANCHORED,)
    effect_models = (FinalAnchoredEffect,)

    def apply(self, session: Session, log: DecodedLog) -> None:
        self.apply_many(session, [log])

    def apply_many(self, session: Session, logs: Sequence[DecodedLog]) -> None:
        bulk_insert(
            session,
            FinalAnchoredEffect.__table__,
            [
                {
                    **log.key,
                    "block_number": log.block_number,
                    "tree_size": int(log.args["treeSize"]),
                }
                for log in logs
            ],
        )


def latest_anchored_size(session: Session, chain_id: int, *, final: bool = False) -> int:
    """The aggregate: the largest anchored tree size on `chain_id` (0 before any anchor)."""
    model = FinalAnchoredEffect if final else AnchoredEffect
    value = session.scalar(select(func.max(model.tree_size)).where(model.chain_id == chain_id))
    return int(value or 0)
