"""Dated cash flows between lender and borrower: the one input both rate equations read.

Amounts are Decimal in the principal asset's smallest unit (wei, USDC micro-units, cents), so an
integer schedule and a published example in dollars and cents both fit without float.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from backend.credit.pricing.errors import InvalidLoanTerms


class Direction(StrEnum):
    """Who pays: the lender (a drawdown) or the borrower (a repayment or a charge)."""

    TO_BORROWER = "to_borrower"
    FROM_BORROWER = "from_borrower"


@dataclass(frozen=True)
class CashFlow:
    """One payment on one day; `amount` > 0, its side given by `direction`."""

    on: date
    amount: Decimal
    direction: Direction
    label: str = ""

    @classmethod
    def drawdown(cls, on: date, amount: Decimal | int, label: str = "drawdown") -> CashFlow:
        """Money the borrower receives."""
        return cls(on, Decimal(amount), Direction.TO_BORROWER, label)

    @classmethod
    def repayment(cls, on: date, amount: Decimal | int, label: str = "repayment") -> CashFlow:
        """Money the borrower pays: a repayment of credit, interest, or a charge."""
        return cls(on, Decimal(amount), Direction.FROM_BORROWER, label)

    @property
    def signed(self) -> Decimal:
        """+amount for a drawdown, -amount for a repayment or charge."""
        return self.amount if self.direction is Direction.TO_BORROWER else -self.amount


def validate_flows(flows: Sequence[CashFlow]) -> tuple[date, list[CashFlow]]:
    """The first drawdown's date and the flows with zero amounts dropped.

    The annex's time origin is the first drawdown (2008/48/EC Annex I, remark (b)); a flow
    before it, a negative amount, or a schedule with no drawdown or no repayment cannot be priced.
    """
    kept = [flow for flow in flows if flow.amount != 0]
    for flow in kept:
        if flow.amount < 0:
            raise InvalidLoanTerms(
                f"Cash flow {flow.label or flow.on} has a negative amount {flow.amount}.",
                hint="Give every amount as a positive number and its side as the direction.",
            )
    drawdowns = [flow for flow in kept if flow.direction is Direction.TO_BORROWER]
    if not drawdowns:
        raise InvalidLoanTerms(
            "The cash flows contain no drawdown.",
            hint="Include the amount the borrower receives as a drawdown.",
        )
    if not any(flow.direction is Direction.FROM_BORROWER for flow in kept):
        raise InvalidLoanTerms(
            "The cash flows contain no repayment.", hint="Include the repayment schedule."
        )
    start = min(flow.on for flow in drawdowns)
    early = [flow for flow in kept if flow.on < start]
    if early:
        raise InvalidLoanTerms(
            f"A payment on {early[0].on} precedes the first drawdown on {start}.",
            hint="Date every charge on or after the first drawdown.",
        )
    return start, kept


def total_cost_of_credit(flows: Sequence[CashFlow]) -> Decimal:
    """Everything the borrower pays minus everything the borrower receives.

    With the drawdown net of deducted fees and gas booked as a charge, this is the brief's
    "payments + fees + estimated gas - principal".
    """
    return -sum((flow.signed for flow in flows), Decimal(0))
