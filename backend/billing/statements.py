"""Statement lines from usage and a fee schedule: a pure function, so it is checked by laws.

Every line satisfies quantity x unit_price = amount (what `BillingLineV1` verifies), and the
total is the sum of the lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from backend.billing.exceptions import BadPeriod
from backend.billing.plans import FeeSchedule

BPS = 10_000


@dataclass(frozen=True)
class Usage:
    quotes: int
    loans: int  # loans originated in the period (every asset)
    volume: int  # principal originated in the statement currency, smallest units
    other_asset_loans: int = 0


def build_lines(schedule: FeeSchedule, usage: Usage) -> list[dict[str, Any]]:
    billable = max(0, usage.quotes - schedule.included_quotes)
    fee = usage.volume * schedule.origination_bps // BPS
    lines = [
        _line("plan_fee", f"{schedule.code} plan, monthly", 1, schedule.monthly_fee),
        _line(
            "quotes",
            f"{usage.quotes} quotes served, {schedule.included_quotes} included",
            billable,
            schedule.per_quote_fee,
        ),
        _line(
            "loans_originated",
            f"{usage.loans} loans originated ({usage.other_asset_loans} in other assets)",
            usage.loans,
            0,
        ),
        _line(
            "origination_fee",
            f"{schedule.origination_bps} bps on {usage.volume} originated",
            1,
            fee,
        ),
    ]
    return lines


def total_of(lines: list[dict[str, Any]]) -> int:
    return sum(int(line["amount"]) for line in lines)


def _line(code: str, description: str, quantity: int, unit_price: int) -> dict[str, Any]:
    return {
        "code": code,
        "description": description,
        "quantity": quantity,
        "unit_price": str(unit_price),
        "amount": str(quantity * unit_price),
    }


def month_bounds(start: datetime) -> tuple[datetime, datetime]:
    """[start, first of the next month) for a `start` at 00:00 UTC on a month's first day."""
    start = start.astimezone(UTC)
    if (start.day, start.hour, start.minute, start.second, start.microsecond) != (1, 0, 0, 0, 0):
        raise BadPeriod(
            f"statement period starts {start.isoformat()}, not on a month's first day",
            hint="pass the first day of the month at 00:00 UTC, e.g. 2026-11-01T00:00:00Z",
        )
    end = start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)
    return start, end


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
