"""HTTP API of a lender's risk reads: `/v1/provider/alerts`.

A lender is known on chain by its payout address (the `provider` of its loans' terms); the
list holds the alerts of loans made to that address only, and is empty until one is set.
Needs a provider key holding `loans:read`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from backend.auth.deps import Principal, provider_with_scope
from backend.auth.exceptions import MissingScope, WrongPrincipal
from backend.auth.scopes import LOANS_READ
from backend.db import SessionDep
from backend.exceptions import Unauthorized, error_responses
from backend.providers.service import payout_address
from backend.risk.cursors import alert_cursor, parse_alert_cursor
from backend.risk.exceptions import InvalidCursor
from backend.risk.schemas import AlertOut, AlertPage
from backend.risk.service import lender_alerts

router = APIRouter(prefix="/v1/provider", tags=["provider"])


LoanReader = Annotated[Principal, Depends(provider_with_scope(LOANS_READ))]


@router.get(
    "/alerts",
    response_model=AlertPage,
    summary="Early-warning alerts on your loans",
    responses=error_responses(
        Unauthorized, WrongPrincipal, MissingScope, InvalidCursor, validation=True
    ),
)
def list_alerts(
    provider: LoanReader,
    session: SessionDep,
    after: Annotated[
        str | None, Query(max_length=200, description="`next_after` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AlertPage:
    """Each time a loan you made fell below a health threshold, in chain order (listed from
    the chain head; the `risk.alert` webhook is sent once the block is final)."""
    position = parse_alert_cursor(after)
    address = payout_address(session, provider.provider_id)
    views = lender_alerts(session, address, after=position, limit=limit)
    return AlertPage(
        items=[AlertOut.of(view) for view in views],
        next_after=alert_cursor(views[-1].position) if len(views) == limit else None,
    )
