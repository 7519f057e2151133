"""`POST /v1/provider/quotes`: a lender's answer to a credit request, posted after a 202.

The body carries the same answer a lender can give inline (a quote or a decline), validated by
the same model. A request not sent to the caller is a 404 (ids cannot be probed); a late or
second answer a 409 that says which.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.auth.deps import Principal, provider_with_scope
from backend.auth.exceptions import MissingScope, WrongPrincipal
from backend.auth.scopes import QUOTES_WRITE
from backend.credit.late_answers import (
    DECLINE,
    QUOTE,
    AlreadyAnswered,
    AnswerNotExpected,
    DeadlinePassed,
    submit_answer,
)
from backend.db import SessionDep
from backend.exceptions import Unauthorized, error_responses
from backend.providers.rate_cards import MAX_APR

router = APIRouter(prefix="/v1/provider", tags=["provider"])


class PostedQuote(BaseModel):
    """The quote fields of an inline answer (see backend/credit/sources/traditional.py)."""

    model_config = ConfigDict(extra="forbid")

    apr: Decimal = Field(ge=0, le=MAX_APR, description='yearly fraction, e.g. "0.1150"')
    origination_fee: int = Field(default=0, ge=0, description="smallest units of the asset")
    address: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$", description="lender's address")


class PostedDecline(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


class ProviderAnswerIn(BaseModel):
    """Exactly one of `quote` and `decline`."""

    model_config = ConfigDict(extra="forbid")

    credit_request_id: str = Field(min_length=1, max_length=36)
    quote: PostedQuote | None = None
    decline: PostedDecline | None = None

    @model_validator(mode="after")
    def _one_answer(self) -> ProviderAnswerIn:
        if (self.quote is None) == (self.decline is None):
            raise ValueError("give exactly one of `quote` and `decline`")
        return self


class ProviderAnswerOut(BaseModel):
    credit_request_id: str
    decision: str


QuoteWriter = Annotated[Principal, Depends(provider_with_scope(QUOTES_WRITE))]


@router.post(
    "/quotes",
    status_code=201,
    response_model=ProviderAnswerOut,
    summary="Answer a credit request later (after answering its webhook 202)",
    responses=error_responses(
        Unauthorized,
        WrongPrincipal,
        MissingScope,
        AnswerNotExpected,
        DeadlinePassed,
        AlreadyAnswered,
        validation=True,
    ),
)
def post_answer(body: ProviderAnswerIn, provider: QuoteWriter, session: SessionDep) -> Any:
    """Accepted while the request's fan-out waits for you: it was sent to you, its deadline
    (`respond_by`) has not passed and you have not answered it yet."""
    if body.quote is not None:
        kind, answer = QUOTE, body.quote.model_dump(mode="json")
    else:
        assert body.decline is not None
        kind, answer = DECLINE, body.decline.model_dump()
    submit_answer(session, int(provider.id), body.credit_request_id, kind=kind, body=answer)
    return ProviderAnswerOut(credit_request_id=body.credit_request_id, decision=kind)
