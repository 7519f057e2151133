"""HTTP routes of the credit journey: borrowers' requests and providers' views of them.

The borrower's routes take a wallet session (`CurrentWallet`); the provider's routes a provider
key with `requests:read`. Isolation is enforced in the repository (wallet / provider filters),
and a request that is not yours is a 404, never a 403, so ids cannot be probed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from backend.audit.recording import commit_with_entry
from backend.auth.deps import (
    CurrentWallet,
    Principal,
    provider_with_scope,
)
from backend.auth.exceptions import MissingScope, WrongPrincipal
from backend.auth.scopes import REQUESTS_READ
from backend.config import Settings
from backend.credit import service
from backend.credit.admission import Admission
from backend.credit.chain import ChainReader
from backend.credit.exceptions import CreditRequestNotFound, Sanctioned, UnknownAsset
from backend.credit.models import CreditQuote
from backend.credit.phases import Gathered, Prepared
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
from backend.kit.crypto import FieldCipher
from backend.providers.deps import Cipher, app_settings

READER_STATE = "credit_chain_reader"
RUNTIME_STATE = "credit_runtime"
FANOUT_END = "credit_fanout_end"
ADMITTED_AT = "credit_admitted_at"
THREAD_STARTED = "credit_thread_started"

router = APIRouter(prefix="/v1/credit-requests", tags=["credit"])
provider_router = APIRouter(prefix="/v1/provider", tags=["provider"])


async def chain_reader(request: Request) -> ChainReader:
    """The app's chain reader, built once from its settings and chains (async: no I/O, so no
    thread hop)."""
    reader: ChainReader | None = getattr(request.app.state, READER_STATE, None)
    if reader is None:
        reader = ChainReader(app_settings(request), request.app.state.chains)
        setattr(request.app.state, READER_STATE, reader)
    return reader


Reader = Annotated[ChainReader, Depends(chain_reader)]


async def credit_runtime(request: Request, reader: Reader) -> CreditRuntime:
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


async def _admission(
    started: Arrival, request: Request, response: Response, runtime: Runtime
) -> AsyncIterator[Admission]:
    """Wait for a place among the credit requests in flight, before authentication; yields
    whether the request is overloaded (its fan-out budget went on waiting: it asks nobody).

    A request that found this process's full lane taken is answered with `Connection: close`.
    Keep-alive connections stay with the worker process that accepted them, and a burst of
    clients can land mostly on one (measured with `scripts/bench/fanout.py`, 2 workers, 10
    clients: 10/0 and 8/2 splits ran at 20-26 requests/s and p50 439-473 ms, a 6/4 split at
    32/s and 269 ms, one core idling meanwhile). The client reconnects, and the next accept
    goes to whichever worker is free to take it first, so load moves to the idle one. The
    same move as Envoy's overload action `disable_http_keepalive`; it costs a TCP handshake.

    Declared right after `Arrival` so it is resolved before the session exists: a queued
    request holds no thread and no connection. Without it, a burst larger than the thread pool
    deadlocks until the pool timeout: every worker thread waits to check out a connection for
    authentication while every connection belongs to an authenticated request waiting for a
    thread. The wait counts against the request's deadline (fewer quotes, not an error).
    """
    async with runtime.admit(started) as admission:
        setattr(request.state, ADMITTED_AT, time.perf_counter())
        if admission.contended:
            response.headers["Connection"] = "close"
        yield admission
    # Request-scoped, so this runs once the response is out: what the request needed after
    # its fan-out (phase 3, the commit with its audit entry, sending) is what the next
    # requests reserve before their deadline.
    fanout_end: float | None = getattr(request.state, FANOUT_END, None)
    if fanout_end is not None and not admission.overloaded:
        runtime.reserve.observe(time.perf_counter() - fanout_end)


Admitted = Annotated[Admission, Depends(_admission)]


ProviderReader = Annotated[Principal, Depends(provider_with_scope(REQUESTS_READ))]


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
    admission: Admitted,
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
    # covers the whole request (from before the admission queue), so the fan-out gets what is
    # left after phase 1 minus what phase 3 and the commit have lately needed: under load the
    # answer has fewer quotes rather than coming late.
    settings = app_settings(request)
    # Admitted too late to ask anyone in time (the queue took the budget): phase 1 lists the
    # providers as skipped instead of planning their calls, the cheapest honest answer.
    overloaded = admission.overloaded or runtime.budget_left(started) <= 0
    if overloaded:
        # Nobody to wait for: both database phases in one thread hop and one transaction.
        view = await runtime.in_thread(
            _answer_overloaded, session, wallet.id, body, settings, runtime, cipher, request,
            response, overloaded=True,
        )  # fmt: skip
        response.headers["Server-Timing"] = _overloaded_timing(request, started, admission)
        return view
    prepare_started = time.perf_counter()
    prepared = await runtime.in_thread(
        _prepare, session, wallet.id, body, settings, runtime, cipher, overloaded
    )
    runtime.prepare_reserve.observe(time.perf_counter() - prepare_started)
    prepare_ms = (time.perf_counter() - started) * 1000
    gathered = await service.gather_quotes(
        prepared,
        settings=settings,
        reader=runtime.reader,
        client=runtime.client(),
        sessions=request.app.state.session_factory,
        pools=runtime.pools,
        deadline=max(
            0.0,
            settings.credit_fanout_deadline
            - (time.perf_counter() - started)
            - runtime.reserve.value,
        ),
    )
    finish_started = time.perf_counter()
    setattr(request.state, FANOUT_END, finish_started)
    view = await runtime.in_thread(
        _finish, session, prepared, gathered, settings, request, response
    )
    finish_seconds = time.perf_counter() - finish_started
    response.headers["Server-Timing"] = (
        f"prepare;dur={prepare_ms:.1f}, fanout;dur={gathered.fanout_seconds * 1000:.1f}, "
        f"finish;dur={finish_seconds * 1000:.1f}, "
        f"total;dur={(time.perf_counter() - started) * 1000:.1f}"
    )
    return view


def _prepare(
    session: Session,
    wallet: str,
    body: CreditRequestIn,
    settings: Settings,
    runtime: CreditRuntime,
    cipher: FieldCipher,
    overloaded: bool = False,
) -> Prepared:
    """Phase 1, then end its (read-only) transaction in the same thread hop, so no connection
    (and on SQLite no write lock) is held while the providers answer; phase 3 begins afresh."""
    try:
        return _phase1(session, wallet, body, settings, runtime, cipher, overloaded)
    finally:
        session.rollback()


def _phase1(
    session: Session,
    wallet: str,
    body: CreditRequestIn,
    settings: Settings,
    runtime: CreditRuntime,
    cipher: FieldCipher,
    overloaded: bool,
) -> Prepared:
    return service.prepare_credit_request(
        session,
        wallet,
        body,
        settings=settings,
        reader=runtime.reader,
        pools=runtime.pools,
        cipher=cipher,
        overloaded=overloaded,
    )


def _overloaded_timing(request: Request, started: float, admission: Admission) -> str:
    """Where an overloaded request's time went: the full lane's queue, authentication, the
    wait for a thread, and its one database phase."""
    admitted: float = getattr(request.state, ADMITTED_AT, started)
    thread: float = getattr(request.state, THREAD_STARTED, admitted)
    now = time.perf_counter()
    parts = {
        "full-lane-wait": admission.full_wait,
        "overload-lane-wait": admission.overload_wait,
        "admission": admitted - started,
        "thread": thread - admitted,
        "work": now - thread,
    }
    return "overloaded, " + ", ".join(
        [f"{name};dur={seconds * 1000:.1f}" for name, seconds in parts.items()]
        + [f"total;dur={(now - started) * 1000:.1f}"]
    )


def _answer_overloaded(
    session: Session,
    wallet: str,
    body: CreditRequestIn,
    settings: Settings,
    runtime: CreditRuntime,
    cipher: FieldCipher,
    request: Request,
    response: Response,
) -> CreditRequestView:
    """An overloaded request end to end: screened and scored like any other, every provider
    listed as not asked, persisted and audited, in one transaction."""
    setattr(request.state, THREAD_STARTED, time.perf_counter())
    prepared = _phase1(session, wallet, body, settings, runtime, cipher, overloaded=True)
    nothing = Gathered(results={}, markets={}, fanout_seconds=0.0)
    return _finish(session, prepared, nothing, settings, request, response)


def _finish(
    session: Session,
    prepared: Prepared,
    gathered: Gathered,
    settings: Settings,
    request: Request,
    response: Response,
) -> CreditRequestView:
    """Phase 3 and the commit in one thread hop: the receipt log's size lock and the audit
    head lock are taken at the end of phase 3 and released by this commit a few round trips
    later, not after the event loop has got round to the session dependency's exit."""
    view = service.finish_credit_request(session, prepared, gathered, settings=settings)
    commit_with_entry(request, response, session)
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
