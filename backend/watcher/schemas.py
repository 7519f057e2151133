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
    rpc_unavailable: bool = Field(
        default=False,
        description="No successful read of the chain for 5 block times (at least 10 s): the "
        "node is unreachable or no worker is running.",
    )
    rpc_unavailable_since: datetime | None = Field(
        default=None, description="Time of the last successful read, while unavailable."
    )
    stale_seconds: float = Field(default=0.0, description="Seconds since the last successful step.")


class WatcherStatus(BaseModel):
    chains: list[ChainStatus]
