"""API shapes of the watcher (separate from the tables)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ChainStatus(BaseModel):
    chain_id: int
    name: str | None = Field(description="Name in the chains file, if configured here.")
    head: int | None = Field(description="Chain head seen by the last ingestion step.")
    cursor: int = Field(description="Last block whose logs and effects are stored.")
    lag: int | None = Field(description="head - cursor, in blocks.")
    finalized: int | None = Field(description="Finalized block seen by the last step.")
    final_delivered: int = Field(description="Last block delivered to final-phase projections.")
    logs_ingested: int
    reorg_count: int
    last_reorg_depth: int | None
    last_reorg_at: datetime | None
    updated_at: datetime


class WatcherStatus(BaseModel):
    chains: list[ChainStatus]
