"""`GET /v1/watcher/status`, and the watcher's metrics on the app's registry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request

from backend.db import SessionDep
from backend.observability.metrics import HttpMetrics
from backend.watcher.metrics import WatcherCollector
from backend.watcher.schemas import WatcherStatus
from backend.watcher.service import chain_statuses


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Register the collector on this app instance's registry (each app has its own)."""
    metrics: HttpMetrics = app.state.metrics
    collector = WatcherCollector(app.state.session_factory)
    metrics.registry.register(collector)
    try:
        yield
    finally:
        metrics.registry.unregister(collector)


router = APIRouter(prefix="/v1/watcher", tags=["watcher"], lifespan=_lifespan)


@router.get("/status", response_model=WatcherStatus, summary="Ingestion status per chain")
def status(request: Request, session: SessionDep) -> WatcherStatus:
    """Per chain: head, cursor, lag, finalized block, last reorg depth and time."""
    return WatcherStatus(chains=chain_statuses(session, request.app.state.chains))
