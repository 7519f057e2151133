"""HTTP routes of the credit journey: borrowers' requests and providers' views of them.

The borrower's routes take a wallet session (`CurrentWallet`); the provider's routes a provider
key with `requests:read`. Isolation is enforced in the repository (wallet / provider filters),
and a request that is not yours is a 404, never a 403, so ids cannot be probed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from backend.auth.deps import CurrentProvider, CurrentWallet, Principal, require_scope
from backend.auth.exceptions import MissingScope, WrongPrincipal
from backend.auth.scopes import REQUESTS_READ
from backend.credit import service
from backend.credit.chain import ChainReader
from backend.credit.exceptions import CreditRequestNotFound, Sanctioned, UnknownAsset
from backend.credit.models import CreditQuote
from backend.credit.repository import ProviderCreditRepository
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
def create_credit_request(
    body: CreditRequestIn,
    wallet: CurrentWallet,
    session: SessionDep,
    request: Request,
    reader: Reader,
    cipher: Cipher,
) -> Any:
    """Screens the wallet, scores it, asks every eligible provider at once (each within its
    timeout, all within one deadline) and answers with the quotes that arrived, best first,
    each with the EIP-712 acceptance to sign, the providers that did not quote and why, and
    the id of the quote_set receipt."""
    return service.create_credit_request(
        session,
        wallet.id,
        body,
        settings=app_settings(request),
        reader=reader,
        cipher=cipher,
    )


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
