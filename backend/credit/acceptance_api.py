"""HTTP routes of acceptance: a borrower accepts a quote and reads its loans; a lender lists
the loans opened on its quotes.

Isolation is in the repositories (`backend.credit.loans`); another tenant's quote or loan is a
404. `POST /v1/quotes/{id}/accept` commits its (read-only) transaction before it waits on the
chain: see `backend.credit.acceptance` for the three steps.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from backend.auth.deps import CurrentWallet
from backend.auth.exceptions import MissingScope, WrongPrincipal
from backend.credit import acceptance
from backend.credit.acceptance import (
    ChainUnavailable,
    LoanNotFound,
    LoanRefused,
    QuoteAlreadyAccepted,
    QuoteExpired,
    QuoteNotAcceptable,
    QuoteNotFound,
    RateMoved,
    SignatureMismatch,
)
from backend.credit.api import ProviderReader, Reader
from backend.credit.loans import (
    AcceptedView,
    AcceptIn,
    LoanView,
    ProviderLoanRepository,
    WalletLoanRepository,
    loan_view,
)
from backend.db import SessionDep
from backend.exceptions import Unauthorized, error_responses
from backend.providers.deps import WebhookQueueingSession, app_settings

router = APIRouter(tags=["credit"])
provider_router = APIRouter(prefix="/v1/provider", tags=["provider"])


@router.post(
    "/v1/quotes/{quote_id}/accept",
    status_code=201,
    response_model=AcceptedView,
    summary="Accept a quote with your EIP-712 signature; the loan is opened on-chain",
    responses=error_responses(
        Unauthorized,
        WrongPrincipal,
        QuoteNotFound,
        QuoteExpired,
        QuoteAlreadyAccepted,
        RateMoved,
        LoanRefused,
        QuoteNotAcceptable,
        SignatureMismatch,
        ChainUnavailable,
        validation=True,
    ),
)
def accept_quote(
    quote_id: str,
    body: AcceptIn,
    wallet: CurrentWallet,
    session: WebhookQueueingSession,
    request: Request,
    reader: Reader,
) -> Any:
    """Re-checks the quote (yours, unexpired, unused, signed as served, a DeFi rate still
    within your tolerance), has CreditAggregator open the loan, and answers with the loan id,
    the transaction and the acceptance receipt's id. The lender gets a `loan.opened` webhook.
    A 503 leaves nothing half-done: retry it."""
    settings = app_settings(request)
    prepared = acceptance.prepare_acceptance(
        session, wallet.id, quote_id, body, settings=settings, reader=reader
    )
    # Nothing was written: end the transaction so the wait on the chain holds no lock.
    session.commit()
    opened = acceptance.open_loan(
        prepared, settings=settings, reader=reader, engine=request.app.state.engine
    )
    return acceptance.record_acceptance(session, prepared, opened, settings=settings)


@router.get(
    "/v1/loans/{loan_id}",
    response_model=LoanView,
    summary="One of your loans",
    responses=error_responses(Unauthorized, WrongPrincipal, LoanNotFound),
)
def get_loan(loan_id: str, wallet: CurrentWallet, session: SessionDep) -> Any:
    """`loan_id` is the `id` POST /v1/quotes/{id}/accept answered with."""
    found = WalletLoanRepository(session, wallet.id.lower()).loan(loan_id)
    if found is None:
        raise LoanNotFound(
            f"No loan {loan_id!r} belongs to this wallet.",
            hint="Use the `id` returned by POST /v1/quotes/{id}/accept, as the same wallet.",
        )
    return loan_view(*found)


@provider_router.get(
    "/loans",
    response_model=list[LoanView],
    summary="Loans opened on your quotes",
    responses=error_responses(Unauthorized, WrongPrincipal, MissingScope),
)
def provider_loans(
    provider: ProviderReader,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    """Newest first."""
    repo = ProviderLoanRepository(session, provider.provider_id)
    return [loan_view(loan, quote) for loan, quote in repo.loans(limit=limit)]
