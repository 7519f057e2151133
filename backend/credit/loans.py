"""Loans opened by accepted quotes: the API shapes and all their SQL.

Isolation lives here, as in `backend.credit.repository`: `WalletLoanRepository` only ever
filters by its wallet (a quote is found through its request's wallet), `ProviderLoanRepository`
only by its provider id. Another tenant's quote or loan is simply not found (a 404, never a 403,
so ids cannot be probed).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.credit.loan_models import CreditLoan
from backend.credit.models import CreditQuote, CreditRequest

# -- shapes -----------------------------------------------------------------------------------


class AcceptIn(BaseModel):
    """The borrower's EIP-712 signature over the quote's `typed_data`, as served."""

    model_config = ConfigDict(extra="forbid")

    signature: str = Field(
        pattern=r"^0x([0-9a-fA-F]{2}){1,2048}$",
        description="Hex of eth_signTypedData_v4 over the quote's typed_data (an EOA's 65 "
        "bytes, or whatever the borrower's EIP-1271 wallet accepts).",
    )
    deadline: int | None = Field(
        default=None,
        ge=0,
        lt=2**256,
        description="The `deadline` you signed, if you shortened the served one; it may not "
        "be later than the quote's own.",
    )
    max_rate_drift_bps: int | None = Field(
        default=None,
        ge=0,
        le=10_000,
        description="DeFi quotes: refuse if the pool's rate moved more than this (basis points "
        "of APR) since the quote; default CREDAGG_CREDIT_MAX_RATE_DRIFT_BPS.",
    )
    typed_data: dict[str, Any] | None = Field(
        default=None,
        description="Optional: the typed data your wallet signed. Only used to name what "
        "differs from the served one when the signature does not match.",
    )


class AcceptedView(BaseModel):
    """The loan the acceptance opened: `loan_id` is CreditAggregator's id on `chain_id`; `id`
    is ours (for GET /v1/loans/{id})."""

    id: str
    loan_id: str
    chain_id: int
    tx_hash: str
    block_number: int
    receipt_id: str | None


class LoanView(BaseModel):
    id: str
    loan_id: str
    chain_id: int
    aggregator: str
    quote_id: str
    credit_request_id: str
    borrower: str
    provider_id: int
    principal: str
    asset: str
    rate_bps: int
    term_seconds: int
    status: str
    tx_hash: str
    block_number: int
    receipt_id: str | None
    created_at: datetime


def accepted_view(loan: CreditLoan) -> AcceptedView:
    return AcceptedView(
        id=loan.id,
        loan_id=loan.loan_id,
        chain_id=loan.chain_id,
        tx_hash=loan.tx_hash,
        block_number=loan.block_number,
        receipt_id=loan.receipt_id,
    )


def loan_view(loan: CreditLoan, quote: CreditQuote) -> LoanView:
    message = quote.typed_data["message"]
    return LoanView(
        id=loan.id,
        loan_id=loan.loan_id,
        chain_id=loan.chain_id,
        aggregator=loan.aggregator,
        quote_id=loan.quote_id,
        credit_request_id=loan.request_id,
        borrower=loan.wallet,
        provider_id=loan.provider_id,
        principal=str(message["principal"]),
        asset=str(message["asset"]),
        rate_bps=int(message["rateBps"]),
        term_seconds=int(message["termSeconds"]),
        status=loan.status,
        tx_hash=loan.tx_hash,
        block_number=loan.block_number,
        receipt_id=loan.receipt_id,
        created_at=loan.created_at,
    )


# -- SQL ----------------------------------------------------------------------------------------


class WalletLoanRepository:
    """One wallet's quotes and loans: every query is filtered by `wallet`."""

    def __init__(self, session: Session, wallet: str) -> None:
        self.session = session
        self.wallet = wallet

    def quote(self, quote_id: str) -> tuple[CreditQuote, CreditRequest] | None:
        row = self.session.execute(
            select(CreditQuote, CreditRequest)
            .join(CreditRequest, CreditRequest.id == CreditQuote.request_id)
            .where(CreditQuote.id == quote_id, CreditRequest.wallet == self.wallet)
        ).first()
        return (row[0], row[1]) if row is not None else None

    def loan_of_request(self, request_id: str) -> CreditLoan | None:
        """The loan a credit request already ended in (at most one, by a unique key)."""
        return self.session.scalar(
            select(CreditLoan).where(
                CreditLoan.request_id == request_id, CreditLoan.wallet == self.wallet
            )
        )

    def loan(self, loan_id: str) -> tuple[CreditLoan, CreditQuote] | None:
        row = self.session.execute(
            select(CreditLoan, CreditQuote)
            .join(CreditQuote, CreditQuote.id == CreditLoan.quote_id)
            .where(CreditLoan.id == loan_id, CreditLoan.wallet == self.wallet)
        ).first()
        return (row[0], row[1]) if row is not None else None

    def add(self, loan: CreditLoan) -> None:
        if loan.wallet != self.wallet:
            raise ValueError("a wallet's repository only writes that wallet's loans")
        self.session.add(loan)
        self.session.flush()


class ProviderLoanRepository:
    """One provider's loans: every query is filtered by `provider_id`."""

    def __init__(self, session: Session, provider_id: int) -> None:
        self.session = session
        self.provider_id = provider_id

    def loans(self, *, limit: int) -> Sequence[tuple[CreditLoan, CreditQuote]]:
        rows = self.session.execute(
            select(CreditLoan, CreditQuote)
            .join(CreditQuote, CreditQuote.id == CreditLoan.quote_id)
            .where(CreditLoan.provider_id == self.provider_id)
            .order_by(CreditLoan.created_at.desc(), CreditLoan.id)
            .limit(limit)
        ).all()
        return [(loan, quote) for loan, quote in rows]
