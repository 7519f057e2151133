"""The `anchors` projections: ReceiptAnchor's `Anchored` at the head and once final.

Small on purpose: they prove the framework (per-log effects, both phases) on a real suite
event. The aggregate, the latest anchored size per chain, is a query over the effect rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.watcher.bulk import insert_tuples
from backend.watcher.events import EventSpec
from backend.watcher.models import AnchoredEffect, FinalAnchoredEffect
from backend.watcher.projections import DecodedLog, Projection

ANCHORED = EventSpec.parse(
    "Anchored(uint64 indexed treeSize, bytes32 root, uint64 prevSize, bytes32 prevRoot)"
)


#: Effect rows go in as tuples in this column order (no dict per row: backfills write millions).
_ANCHORED_COLUMNS = (
    "chain_id",
    "block_hash",
    "log_index",
    "block_number",
    "contract",
    "tree_size",
    "root",
    "prev_size",
)
_FINAL_COLUMNS = ("chain_id", "block_hash", "log_index", "block_number", "tree_size")


class AnchorsProjection(Projection):
    name = "anchors"
    phase = "head"
    events = (ANCHORED,)
    effect_models = (AnchoredEffect,)

    def apply(self, session: Session, log: DecodedLog) -> None:
        self.apply_many(session, [log])

    def apply_many(self, session: Session, logs: Sequence[DecodedLog]) -> None:
        insert_tuples(
            session,
            AnchoredEffect.__table__,
            _ANCHORED_COLUMNS,
            [
                (
                    log.chain_id,
                    log.block_hash,
                    log.log_index,
                    log.block_number,
                    log.address,
                    int(log.args["treeSize"]),
                    bytes(log.args["root"]),
                    int(log.args["prevSize"]),
                )
                for log in logs
            ],
            binary=True,
        )


class FinalAnchorsProjection(Projection):
    name = "final_anchors"
    phase = "final"
    events = (ANCHORED,)
    effect_models = (FinalAnchoredEffect,)

    def apply(self, session: Session, log: DecodedLog) -> None:
        self.apply_many(session, [log])

    def apply_many(self, session: Session, logs: Sequence[DecodedLog]) -> None:
        insert_tuples(
            session,
            FinalAnchoredEffect.__table__,
            _FINAL_COLUMNS,
            [
                (
                    log.chain_id,
                    log.block_hash,
                    log.log_index,
                    log.block_number,
                    int(log.args["treeSize"]),
                )
                for log in logs
            ],
            binary=True,
        )


def latest_anchored_size(session: Session, chain_id: int, *, final: bool = False) -> int:
    """The aggregate: the largest anchored tree size on `chain_id` (0 before any anchor)."""
    model = FinalAnchoredEffect if final else AnchoredEffect
    value = session.scalar(select(func.max(model.tree_size)).where(model.chain_id == chain_id))
    return int(value or 0)
