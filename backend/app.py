"""The ASGI application factory.

`create_app(settings)` builds everything an app instance needs from the settings it is given:
engine, session factory, metrics registry, readiness checker and chains. Nothing is read from
globals, so tests can build as many independent apps as they like. The only process-wide
concern, logging, is left to entry points: `serve(settings)`, or `create_app()` with no
argument, which is what `uvicorn --factory backend.app:create_app` calls.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import Engine

from backend.audit.middleware import AuditMiddleware
from backend.auth.api import router as auth_router
from backend.billing.api import router as billing_router
from backend.config import Settings, get_settings
from backend.credit.acceptance_api import provider_router as acceptance_provider_router
from backend.credit.acceptance_api import router as acceptance_router
from backend.credit.api import provider_router as credit_provider_router
from backend.credit.api import router as credit_router
from backend.credit.pools_api import router as pools_router
from backend.credit.provider_quotes_api import router as provider_quotes_router
from backend.db import create_db_engine, create_session_factory
from backend.exceptions import ErrorBody, install_exception_handlers
from backend.idempotency.middleware import IdempotencyMiddleware
from backend.kit.openapi import document_middleware
from backend.observability.context import REQUEST_ID_HEADER
from backend.observability.logs import configure_logging
from backend.observability.metrics import HttpMetrics
from backend.observability.middleware import RequestContextMiddleware, TimeoutMiddleware
from backend.providers.api import router as providers_router
from backend.ratelimit.middleware import RateLimitMiddleware
from backend.receipts.api import router as receipts_router
from backend.risk.api import router as risk_router
from backend.system.api import router as system_router
from backend.system.readiness import ReadinessChecker
from backend.wallets.api import router as wallets_router
from backend.watcher.api import router as watcher_router
from chain_adapters.registry import load_chains

logger = logging.getLogger("credagg.app")


def _version() -> str:
    try:
        return version("credagg")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0+unknown"


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the API for `settings`.

    Without `settings` this is the process entry point (`uvicorn --factory`): settings come from
    the environment and logging is configured as JSON. A chains file that is missing or invalid
    fails here, at start-up, not at the first request. Pass `engine` to share one (tests);
    otherwise the app owns its engine and disposes of it on shutdown.
    """
    if settings is None:
        settings = get_settings()
        configure_logging(settings.log_level)
    chains = load_chains(settings.chains_file) if settings.chains_file else None
    if settings.embedded_broker:
        # The API enqueues tasks too: the embedded broker's SQLite file lives in the data dir.
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    owns_engine = engine is None
    db_engine = engine if engine is not None else create_db_engine(settings)
    metrics = HttpMetrics()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        logger.info("api starting", extra={"settings": settings.safe_summary()})
        yield
        runtime = getattr(_app.state, "credit_runtime", None)
        if runtime is not None:  # the fan-out's shared HTTP client pool
            await runtime.aclose()
        if owns_engine:
            db_engine.dispose()

    app = FastAPI(
        title="credagg",
        version=_version(),
        description="Wallet-native credit aggregation with on-chain receipts.",
        lifespan=lifespan,
        responses={500: {"model": ErrorBody, "description": "`internal_error`: a bug; logged."}},
    )
    app.state.settings = settings
    app.state.engine = db_engine
    app.state.session_factory = create_session_factory(db_engine)
    app.state.metrics = metrics
    app.state.chains = chains
    app.state.readiness = ReadinessChecker(settings=settings, engine=db_engine, chains=chains)

    install_exception_handlers(app)
    app.include_router(system_router)
    app.include_router(watcher_router)
    app.include_router(auth_router)
    app.include_router(receipts_router)
    app.include_router(providers_router)
    app.include_router(credit_router)
    app.include_router(credit_provider_router)
    app.include_router(acceptance_router)
    app.include_router(acceptance_provider_router)
    app.include_router(provider_quotes_router)
    app.include_router(pools_router)
    app.include_router(wallets_router)
    app.include_router(risk_router)
    app.include_router(billing_router)

    # Added innermost first: the request context wraps everything, so even a CORS preflight or
    # a timeout gets a request id, a metric and an access log line.
    app.add_middleware(TimeoutMiddleware, timeout=settings.request_timeout)
    app.add_middleware(
        IdempotencyMiddleware, settings=settings, session_factory=app.state.session_factory
    )
    if settings.rate_limits_active:
        app.add_middleware(
            RateLimitMiddleware, settings=settings, session_factory=app.state.session_factory
        )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials="*" not in settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=[REQUEST_ID_HEADER],
        )
    app.add_middleware(AuditMiddleware, session_factory=app.state.session_factory)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    document_middleware(app)
    return app


def serve(settings: Settings) -> None:
    """Run the API under uvicorn on `settings.api_host:api_port` with JSON logs (CLI entry)."""
    import uvicorn

    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
    )
