"""Views of stored requests and quotes (shared by the borrower's POST and GET)."""

from __future__ import annotations

from collections.abc import Sequence

from backend.credit.models import CreditQuote, CreditRequest, Outcome, ProviderOutcome
from backend.credit.schemas import CreditRequestView, NotQuotedView, QuoteView, RiskView


def quote_view(quote: CreditQuote) -> QuoteView:
    return QuoteView(
        id=quote.id,
        provider_id=quote.provider_id,
        source=quote.source,
        chain_id=quote.chain_id,
        rank=quote.rank,
        excluded_reason=quote.excluded_reason,
        expires_at=quote.expires_at,
        quote=quote.document,
        figures=quote.figures,
        typed_data=quote.typed_data,
    )


def request_view(
    request: CreditRequest,
    quotes: Sequence[CreditQuote],
    outcomes: Sequence[ProviderOutcome],
) -> CreditRequestView:
    ranked = sorted((q for q in quotes if q.rank is not None), key=lambda q: q.rank or 0)
    return CreditRequestView(
        id=request.id,
        wallet=request.wallet,
        asset=request.asset,
        amount=request.amount,
        term_days=request.term_days,
        purpose=request.purpose,
        created_at=request.created_at,
        risk=RiskView(score=request.risk_score, reasons=list(request.risk_reasons)),
        quotes=[quote_view(q) for q in ranked],
        excluded=[quote_view(q) for q in quotes if q.rank is None],
        not_quoted=[
            NotQuotedView(provider_id=o.provider_id, outcome=o.outcome, reason=o.reason)
            for o in outcomes
            if o.outcome != Outcome.QUOTED.value
        ],
        receipt_id=request.quote_set_receipt_id,
        provider_timings_ms={
            o.provider_id: o.duration_ms for o in outcomes if o.duration_ms is not None
        },
    )
