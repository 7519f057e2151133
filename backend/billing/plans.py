"""Fee schedules. Amounts are in the statement currency's smallest unit (USDC: 6 decimals).

A plan charges a monthly fee that includes some quotes, a fee per quote beyond those, and basis
points on the principal originated in the statement currency (loans in other assets are listed
for volume but not charged: converting them would need a price the statement cannot prove).
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.billing.exceptions import UnknownPlan


@dataclass(frozen=True)
class FeeSchedule:
    code: str
    monthly_fee: int
    included_quotes: int
    per_quote_fee: int
    origination_bps: int


PLANS: dict[str, FeeSchedule] = {
    plan.code: plan
    for plan in (
        FeeSchedule("pay_as_you_go", 0, 0, 50_000, 10),
        FeeSchedule("growth", 500 * 10**6, 10_000, 20_000, 5),
        FeeSchedule("enterprise", 5_000 * 10**6, 250_000, 5_000, 2),
    )
}


def plan(code: str) -> FeeSchedule:
    try:
        return PLANS[code]
    except KeyError:
        raise UnknownPlan(
            f"unknown billing plan {code!r}", hint=f"use one of {sorted(PLANS)}"
        ) from None
