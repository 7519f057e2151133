"""Tables of the system domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import Base
from backend.kit.columns import BigIntPK, UTCDateTime, utcnow


class WorkerHeartbeat(Base):
    """One row per `system.ping` a worker executed: proof that the queue round-trip works."""

    __tablename__ = "worker_heartbeats"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    nonce: Mapped[str] = mapped_column(String(128), index=True)
    hostname: Mapped[str] = mapped_column(String(255))
    task_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
