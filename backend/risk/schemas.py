"""Response shapes of the risk reads (never the table models). Amounts are uint256 in the
token's smallest unit as decimal strings; health factors and prices are decimal strings."""

from __future__ import annotations

from pydantic import BaseModel, Field

from backend.risk.service import AlertView, ChainLoanView, Exposure


class AlertOut(BaseModel):
    """A loan's health factor fell below `threshold` because of this log."""

    chain_id: int
    loan_id: str
    borrower: str
    provider: str
    threshold: str = Field(description='The threshold crossed, e.g. "1.5".')
    health_factor: str = Field(description="Health factor after the log (decimal string).")
    price: str | None = Field(description="Collateral price after the log (feed's currency).")
    block_number: int
    block_hash: str
    log_index: int
    transaction_hash: str | None

    @classmethod
    def of(cls, view: AlertView) -> AlertOut:
        a = view.alert
        return cls(
            chain_id=a.chain_id,
            loan_id=a.loan_id,
            borrower=a.borrower,
            provider=a.provider,
            threshold=a.threshold,
            health_factor=a.health_factor,
            price=a.price,
            block_number=a.block_number,
            block_hash=a.block_hash,
            log_index=a.log_index,
            transaction_hash=view.transaction_hash,
        )


class AlertPage(BaseModel):
    """In chain order; pass `next_after` as `after` for the next page (null: no more)."""

    items: list[AlertOut]
    next_after: str | None


class LoanOut(BaseModel):
    """A loan as the chain watcher sees it (status, debt, collateral, health)."""

    chain_id: int
    loan_id: str
    status: str = Field(description="active, repaid, defaulted or liquidated.")
    provider: str
    asset: str
    collateral_asset: str
    principal: str
    outstanding: str
    repaid: str
    collateral: str
    health_factor: str | None = Field(description="Null while undefined (no debt/collateral).")

    @classmethod
    def of(cls, view: ChainLoanView) -> LoanOut:
        loan = view.loan
        return cls(
            chain_id=view.chain_id,
            loan_id=str(loan.loan_id),
            status=loan.status,
            provider=loan.provider,
            asset=loan.asset,
            collateral_asset=loan.collateral_asset,
            principal=str(loan.principal),
            outstanding=str(loan.outstanding),
            repaid=str(loan.repaid),
            collateral=str(loan.collateral),
            health_factor=None if view.health_factor is None else str(view.health_factor),
        )


class LoanPage(BaseModel):
    """In (chain id, loan id) order; pass `next_after` as `after` for the next page."""

    items: list[LoanOut]
    next_after: str | None


class ExposureOut(BaseModel):
    chain_id: int
    asset: str
    outstanding: str

    @classmethod
    def of(cls, exposure: Exposure) -> ExposureOut:
        return cls(
            chain_id=exposure.chain_id, asset=exposure.asset, outstanding=str(exposure.outstanding)
        )


class LoanHealthOut(BaseModel):
    chain_id: int
    loan_id: str
    status: str
    health_factor: str | None


class RiskOut(BaseModel):
    """The wallet's score as credit requests price it, plus its exposure and loans' health."""

    wallet: str
    score: int = Field(ge=300, le=850)
    reasons: list[str]
    loans: int = Field(description="Loans on record on the configured chains.")
    defaults: int
    outstanding: str = Field(description="Open debt on those chains, smallest units summed.")
    exposure: list[ExposureOut]
    health: list[LoanHealthOut]
