"""Response shapes of the billing API (never the table models). Amounts are integers in the
statement currency's smallest unit, as decimal strings."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class LineOut(BaseModel):
    code: str = Field(description="plan_fee, quotes, loans_originated or origination_fee.")
    description: str
    quantity: int
    unit_price: str
    amount: str


class StatementOut(BaseModel):
    """One month of one lender's usage. `open` while events of the month may still change it;
    `final` once all are final, and then never recomputed and issued as a receipt."""

    id: int
    period_start: datetime
    period_end: datetime
    status: Literal["open", "final"]
    plan: str
    lines: list[LineOut]
    total: str
    receipt_id: str | None = Field(description="The billing_statement receipt, once final.")
    computed_at: datetime


class StatementPage(BaseModel):
    """Newest first; pass `next_before` as `before` for the next page (null: no more)."""

    items: list[StatementOut]
    next_before: int | None
