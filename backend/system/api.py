"""Operational endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from backend.observability.metrics import HttpMetrics
from backend.system.readiness import ReadinessChecker
from backend.system.schemas import Liveness, Readiness

router = APIRouter(tags=["system"])


@router.get("/healthz", response_model=Liveness, summary="Liveness")
async def healthz() -> Liveness:
    """The process is up and serving. Touches no dependency, so a database outage does not
    get every replica restarted; that is what /readyz is for."""
    return Liveness()


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness",
    responses={503: {"model": Readiness, "description": "Some component is not ready."}},
)
async def readyz(request: Request) -> JSONResponse:
    """200 when the database, the broker and every configured chain are usable, else 503."""
    checker: ReadinessChecker = request.app.state.readiness
    ready, components = await checker.check()
    body = Readiness(status="ready" if ready else "not_ready", components=components)
    return JSONResponse(status_code=200 if ready else 503, content=body.model_dump())


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this app instance's registry."""
    http_metrics: HttpMetrics = request.app.state.metrics
    payload, content_type = http_metrics.render()
    return Response(content=payload, media_type=content_type)
