"""The projection framework: stored logs -> effect rows, per phase, each row keyed by its log.

Rules every projection follows (and why):

* It declares the events it consumes (`events`) and the tables it writes (`effect_models`).
  Every effect table has the log key (chain_id, block_hash, log_index) as a foreign key to
  `watcher_logs` with ON DELETE CASCADE, so a reorg that deletes an orphaned log deletes exactly
  its effects, and nothing else has to know what a projection wrote.
* `apply(session, log)` only inserts effect rows for that log. Aggregates (balances, totals,
  latest values) are queries over effect rows, never counters updated in place, so undoing a log
  is the deletion of its rows and a rebuild is a replay.
* Phase `head` projections see a log as soon as its block is ingested (risk acts at the tip);
  phase `final` projections see it exactly once, in the transaction that moves the cursor's
  `final_number` past its block (billing acts at finality).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Literal, NamedTuple

from sqlalchemy import delete
from sqlalchemy.orm import Session

from backend.db import Base
from backend.watcher.events import EventSpec
from chain_adapters.base import Log

Phase = Literal["head", "final"]


@dataclass(frozen=True, slots=True)
class DecodedLog:
    """A stored log with its event decoded; `key` is what effect rows reference."""

    chain_id: int
    block_hash: str
    log_index: int
    block_number: int
    transaction_hash: str
    address: str
    event: str
    args: dict[str, Any]

    @property
    def key(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "block_hash": self.block_hash,
            "log_index": self.log_index,
        }


class RawLogRow(NamedTuple):
    """A log as stored: the columns of `watcher_logs`, in table order.

    A tuple on purpose: the same object is the row COPY writes (`LOG_COLUMNS` order), so the
    hot path builds one object per log instead of a row object plus a tuple of its values.
    """

    chain_id: int
    block_hash: str
    log_index: int
    block_number: int
    transaction_hash: str
    address: str
    topic0: str | None
    topic1: str | None
    topic2: str | None
    topic3: str | None
    data: bytes

    @property
    def topics(self) -> tuple[str | None, ...]:
        return (self.topic0, self.topic1, self.topic2, self.topic3)


#: The columns of `watcher_logs` in `RawLogRow` order (what COPY names).
LOG_COLUMNS: tuple[str, ...] = RawLogRow._fields

#: NULL columns after a log's n topics (the EVM's LOG0..LOG4: at most four).
_NO_TOPICS: tuple[tuple[None, ...], ...] = tuple((None,) * (4 - n) for n in range(5))


def raw_rows(chain_id: int, logs: Iterable[Log]) -> list[RawLogRow]:
    """The stored rows of node logs: the one row builder (fetch path and `add_logs`).

    A log has 0-4 topics; the row always has four topic columns, missing ones NULL.
    """
    new = tuple.__new__
    return [
        new(
            RawLogRow,
            (
                chain_id,
                log.block_hash,
                log.log_index,
                log.block_number,
                log.transaction_hash,
                log.address,
                *log.topics,
                *_NO_TOPICS[len(log.topics)],
                log.data,
            ),
        )
        for log in logs
    ]


class Projection(ABC):
    """Base class of projections; subclasses set the class attributes and `apply`."""

    name: ClassVar[str]
    phase: ClassVar[Phase]
    events: ClassVar[tuple[EventSpec, ...]]
    effect_models: ClassVar[tuple[type[Base], ...]]

    @abstractmethod
    def apply(self, session: Session, log: DecodedLog) -> None:
        """Insert the effect rows of one log (never update rows of other logs)."""

    def apply_many(self, session: Session, logs: Sequence[DecodedLog]) -> None:
        """Apply logs in chain order; override to insert in bulk."""
        for log in logs:
            self.apply(session, log)

    def reset(self, session: Session, chain_id: int) -> None:
        """Drop every effect of `chain_id` (before a rebuild)."""
        for model in self.effect_models:
            session.execute(delete(model).where(model.chain_id == chain_id))  # type: ignore[attr-defined]


class ProjectionRegistry:
    """The projections the watcher feeds, and the topic0 -> event map they imply."""

    def __init__(self, projections: Iterable[Projection] = ()) -> None:
        self._projections: list[Projection] = []
        self._by_topic: dict[str, tuple[EventSpec, list[Projection]]] = {}
        for projection in projections:
            self.register(projection)

    def register(self, projection: Projection) -> None:
        if any(p.name == projection.name for p in self._projections):
            raise ValueError(f"projection {projection.name!r} is registered twice")
        self._projections.append(projection)
        for spec in projection.events:
            known = self._by_topic.setdefault(spec.topic0, (spec, []))
            if known[0].canonical != spec.canonical:  # pragma: no cover - keccak collision
                raise ValueError(f"topic0 clash between {known[0].canonical} and {spec.canonical}")
            known[1].append(projection)

    def __iter__(self) -> Any:
        return iter(self._projections)

    def phase(self, phase: Phase) -> list[Projection]:
        return [p for p in self._projections if p.phase == phase]

    def decode(self, rows: Iterable[RawLogRow]) -> list[DecodedLog]:
        """Decode the logs some projection consumes, in the order given; skip the rest."""
        by_topic = self._by_topic
        decoded: list[DecodedLog] = []
        for row in rows:
            known = by_topic.get(row.topic0 or "")
            if known is None:
                continue
            spec = known[0]
            decoded.append(
                DecodedLog(
                    chain_id=row.chain_id,
                    block_hash=row.block_hash,
                    log_index=row.log_index,
                    block_number=row.block_number,
                    transaction_hash=row.transaction_hash,
                    address=row.address,
                    event=spec.name,
                    args=spec.decode(row.topics, row.data),
                )
            )
        return decoded

    def deliver(self, session: Session, phase: Phase, logs: Sequence[DecodedLog]) -> int:
        """Hand `logs` to every projection of `phase` that consumes their event; count them."""
        if not logs:
            return 0
        for projection in self.phase(phase):
            wanted = {spec.name for spec in projection.events}
            mine = [log for log in logs if log.event in wanted]
            if mine:
                projection.apply_many(session, mine)
        return len(logs)


def default_registry(thresholds: Sequence[Decimal] | None = None) -> ProjectionRegistry:
    """Every projection of the backend. Domains add theirs here (risk, billing).

    `thresholds` are the health factors below which risk alerts fire
    (`CREDAGG_RISK_ALERT_THRESHOLDS`); the projection's defaults when not given.
    """
    from backend.billing.projections import BillingProjection
    from backend.risk.projections import RiskAlertDeliveryProjection, RiskProjection
    from backend.watcher.anchors import AnchorsProjection, FinalAnchorsProjection

    return ProjectionRegistry(
        [
            AnchorsProjection(),
            FinalAnchorsProjection(),
            RiskProjection() if thresholds is None else RiskProjection(thresholds),
            RiskAlertDeliveryProjection(),
            BillingProjection(),
        ]
    )
