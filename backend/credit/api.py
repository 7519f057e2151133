"""HTTP routes of the credit journey: borrowers' requests and providers' views of them.

The borrower's routes take a wallet session (`CurrentWallet`); the provider's routes a provider
key with `requests:read`. Isolation is enforced in the repository (wallet / provider filters),
and a request that is not yours is a 404, never a 403, so ids cannot be probed.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from backend.auth.deps import CurrentProvider, CurrentWallet, Principal, require_scope
from backend.auth.exceptions import MissingScope, WrongPrincipal
from backend.auth.scopes import REQUESTS_READ
from backend.credit import service
from backend.credit.chain import ChainReader
from backend.credit.exceptions import CreditRequestNotFound, Sanctioned, UnknownAsset
from backend.credit.models import CreditQuote
from backend.credit.repository import ProviderCreditRepository
from backend.credit.runtime import CreditRuntime
from backend.credit.schemas import (
    CreditRequestIn,
    CreditRequestView,
    ProviderQuoteView,
    ProviderRequestView,
)
from backend.db import SessionDep
from backend.exceptions import Unauthorized, error_responses
from backend.providers.deps import Cipher, app_settings

READER_STATE = "credit_chain_reader"
RUNTIME_STATE = "credit_runtime"

router = APIRouter(prefix="/v1/credit-requests", tags=["credit"])
provider_router = APIRouter(prefix="/v1/provider", tags=["provider"])


def chain_reader(request: Request) -> ChainReader:
    """The app's chain reader, built once from its settings and chains."""
    reader: ChainReader | None = getattr(request.app.state, READER_STATE, None)
    if reader is None:
        reader = ChainReader(app_settings(request), request.app.state.chains)
        setattr(request.app.state, READER_STATE, reader)
    return reader


Reader = Annotated[ChainReader, Depends(chain_reader)]


def credit_runtime(request: Request, reader: Reader) -> CreditRuntime:
    """The app's shared fan-out state: HTTP pool, per-block pool cache, finish-time reserve."""
    runtime: CreditRuntime | None = getattr(request.app.state, RUNTIME_STATE, None)
    if runtime is None:
        runtime = CreditRuntime.build(app_settings(request), reader)
        setattr(request.app.state, RUNTIME_STATE, runtime)
    return runtime


Runtime = Annotated[CreditRuntime, Depends(credit_runtime)]


async def _arrival() -> float:
    """When the request reached the endpoint's dependencies (declared first, so resolved
    first): the overall deadline counts from here."""
    return time.perf_counter()


Arrival = Annotated[float, Depends(_arrival)]


def _provider_reader(
    provider: CurrentProvider,
    _scoped: Annotated[Principal, Depends(require_scope(REQUESTS_READ))],
) -> Principal:
    return provider


ProviderReader = Annotated[Principal, Depends(_provider_reader)]


@router.post(
    "",
    status_code=201,
    response_model=CreditRequestView,
    summary="Ask for credit once; get ranked quotes",
    responses=error_responses(
        Unauthorized, WrongPrincipal, Sanctioned, UnknownAsset, validation=True
    ),
)
async def create_credit_request(
    started: Arrival,
    body: CreditRequestIn,
    wallet: CurrentWallet,
    session: SessionDep,
    request: Request,
    response: Response,
    runtime: Runtime,
    cipher: Cipher,
) -> Any:
    """Screens the wallet, scores it, asks every eligible provider at once (each within its
    timeout, all within one deadline) and answers with the quotes that arrived, best first,
    each with the EIP-712 acceptance to sign, the providers that did not quote and why, and
    the id of the quote_set receipt."""
    # Async so the network wait holds no worker thread: the database phases run in the thread
    # pool, the fan-out on the server's loop with the shared connection pool. The deadline
    # covers the whole request, so the fan-out gets what is left after phase 1 minus what
    # phase 3 has lately needed: under load the answer has fewer quotes, never comes late.
    settings = app_settings(request)
    prepared = await run_in_threadpool(
        service.prepare_credit_request,
        session,
        wallet.id,
        body,
        settings=settings,
        reader=runtime.reader,
        pools=runtime.pools,
        cipher=cipher,
    )
    # Phase 1 only read: end its transaction so no connection (and on SQLite no write lock)
    # is held while the providers answer; phase 3 begins a fresh one on the same session.
    await run_in_threadpool(session.rollback)
    elapsed = time.perf_counter() - started
    prepare_ms = elapsed * 1000
    gathered = await service.gather_quotes(
        prepared,
        settings=settings,
        reader=runtime.reader,
        client=runtime.client(),
        sessions=request.app.state.session_factory,
        deadline=max(0.0, settings.credit_fanout_deadline - elapsed - runtime.reserve.value),
    )
    finish_started = time.perf_counter()
    view = await run_in_threadpool(
        service.finish_credit_request, session, prepared, gathered, settings=settings
    )
    finish_seconds = time.perf_counter() - finish_started
    runtime.reserve.observe(finish_seconds)
    response.headers["Server-Timing"] = (
        f"prepare;dur={prepare_ms:.1f}, fanout;dur={gathered.fanout_seconds * 1000:.1f}, "
        f"finish;dur={finish_seconds * 1000:.1f}, "
        f"total;dur={(time.perf_counter() - started) * 1000:.1f}"
    )
    return view


@router.get(
    "/{request_id}",
    response_model=CreditRequestView,
    summary="One of your credit requests",
    responses=error_responses(Unauthorized, WrongPrincipal, CreditRequestNotFound),
)
def get_credit_request(request_id: str, wallet: CurrentWallet, session: SessionDep) -> Any:
    return service.get_credit_request(session, wallet.id, request_id)


@provider_router.get(
    "/credit-requests",
    response_model=list[ProviderRequestView],
    summary="Credit requests sent to you",
    responses=error_responses(Unauthorized, WrongPrincipal, MissingScope),
)
def provider_requests(
    provider: ProviderReader,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    """Requests you were considered for, newest first, with what you did (your outcome)."""
    repo = ProviderCreditRepository(session, provider.provider_id)
    return [
        ProviderRequestView(
            id=req.id,
            asset=req.asset,
            amount=req.amount,
            term_days=req.term_days,
            chain_id=req.chain_id,
            collateral=req.collateral,
            risk_score=req.risk_score,
            outcome=outcome.outcome,
            reason=outcome.reason,
            created_at=req.created_at,
        )
        for req, outcome in repo.requests(limit=limit)
    ]


@provider_router.get(
    "/quotes",
    response_model=list[ProviderQuoteView],
    summary="Your quotes",
    responses=error_responses(Unauthorized, WrongPrincipal, MissingScope),
)
def provider_quotes(
    provider: ProviderReader,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    repo = ProviderCreditRepository(session, provider.provider_id)
    return [_provider_quote(q) for q in repo.quotes(limit=limit)]


def _provider_quote(quote: CreditQuote) -> ProviderQuoteView:
    return ProviderQuoteView(
        id=quote.id,
        request_id=quote.request_id,
        rank=quote.rank,
        expires_at=quote.expires_at,
        quote=quote.document,
    )
