"""HTTP API of a lender's billing statements: `/v1/provider/statements`.

Every route takes the provider from its key and the repository filters by it: another
lender's statement is 404. Statements become `billing_statement` receipts when final, so
reading them needs a provider key holding `receipts:read`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from backend.auth.deps import Principal, provider_with_scope
from backend.auth.exceptions import MissingScope, WrongPrincipal
from backend.auth.scopes import RECEIPTS_READ
from backend.billing.exceptions import StatementNotFound
from backend.billing.repository import ProviderStatements
from backend.billing.schemas import StatementOut, StatementPage
from backend.db import SessionDep
from backend.exceptions import Unauthorized, error_responses
from backend.kit.columns import DB_INT_MAX

router = APIRouter(prefix="/v1/provider", tags=["provider"])

_AUTH = (Unauthorized, WrongPrincipal, MissingScope)


StatementReader = Annotated[Principal, Depends(provider_with_scope(RECEIPTS_READ))]


@router.get(
    "/statements",
    response_model=StatementPage,
    summary="Your billing statements",
    responses=error_responses(*_AUTH, validation=True),
)
def list_statements(
    provider: StatementReader,
    session: SessionDep,
    before: Annotated[
        int | None, Query(ge=1, le=DB_INT_MAX, description="Page below this statement id.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> StatementPage:
    """Your monthly statements, open and final, newest first, with their line items."""
    rows = ProviderStatements(session, provider.provider_id).page(before_id=before, limit=limit)
    next_before = rows[-1].id if len(rows) == limit else None
    return StatementPage(
        items=[StatementOut.model_validate(row, from_attributes=True) for row in rows],
        next_before=next_before,
    )


@router.get(
    "/statements/{statement_id}",
    response_model=StatementOut,
    summary="One billing statement",
    responses=error_responses(*_AUTH, StatementNotFound, validation=True),
)
def get_statement(
    statement_id: Annotated[int, Path(ge=1, le=DB_INT_MAX)],
    provider: StatementReader,
    session: SessionDep,
) -> Any:
    row = ProviderStatements(session, provider.provider_id).get(statement_id)
    if row is None:
        raise StatementNotFound(
            f"you have no billing statement {statement_id}",
            hint="List yours with GET /v1/provider/statements.",
        )
    return StatementOut.model_validate(row, from_attributes=True)
