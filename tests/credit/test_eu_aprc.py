"""EU APRC against the published calculation examples, and against closed forms.

Published examples: Directive 98/7/EC, Annex III "Examples of calculation", part A (calendar
basis, 1 year = 365 days), reproduced at https://service.betterregulation.com/document/260747
(and in the Commission proposal COM(1996)79, Annex II, at
https://parlementairemonitor.nl/9353000/1/j4nvirkkkr58fyw_j9tvgajcor7dxyk_j9vvij5epmj1ey0/vi8rm2xukhzg).
The annex equation they solve is the one of 2008/48/EC Annex I, which we implement.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

import pytest

from backend.credit.pricing import (
    CashFlow,
    InvalidLoanTerms,
    NoRateSolution,
    TimeBasis,
    eu_aprc,
)
from backend.credit.pricing.eu_aprc import years_between
from tests.credit._reference import bisect_rate

D = Decimal
CALENDAR = TimeBasis.CALENDAR_DAYS


def test_first_example_single_repayment_after_546_days() -> None:
    """First example: ECU 1 000 lent on 1 January 1994, repaid by ECU 1 200 on 1 July 1995
    (546 days). Published: 13 %, or 12,96 % to two decimals; to the one decimal 2008/48/EC
    requires, 13.0 %."""
    flows = [
        CashFlow.drawdown(date(1994, 1, 1), 1000),
        CashFlow.repayment(date(1995, 7, 1), 1200),
    ]
    aprc = eu_aprc(flows, basis=CALENDAR)
    assert (aprc.rate * 100).quantize(D("0.01"), ROUND_HALF_UP) == D("12.96")
    assert aprc.percent == D("13.0")


def test_second_example_fee_retained_by_the_creditor() -> None:
    """Second example: as the first, but the creditor retains ECU 50 for administrative
    expenses, so ECU 950 is drawn down. Published: 16,9 %."""
    flows = [
        CashFlow.drawdown(date(1994, 1, 1), 950),
        CashFlow.repayment(date(1995, 7, 1), 1200),
    ]
    assert eu_aprc(flows, basis=CALENDAR).percent == D("16.9")


@pytest.mark.parametrize("basis", list(TimeBasis))
def test_third_example_two_annual_instalments(basis: TimeBasis) -> None:
    """Third example: ECU 1 000 on 1 January 1994, repaid by two ECU 600 payments after one and
    two years. Published: i = 0,1306623, 13,1 % (13,07 % to two decimals). The dates are whole
    years, so both time bases give the same figure."""
    flows = [
        CashFlow.drawdown(date(1994, 1, 1), 1000),
        CashFlow.repayment(date(1995, 1, 1), 600),
        CashFlow.repayment(date(1996, 1, 1), 600),
    ]
    aprc = eu_aprc(flows, basis=basis)
    # The annex prints i truncated to seven decimals (the exact root is 0.13066238...).
    assert aprc.rate.quantize(D("0.0000001"), ROUND_DOWN) == D("0.1306623")
    assert (aprc.rate * 100).quantize(D("0.01"), ROUND_HALF_UP) == D("13.07")
    assert aprc.percent == D("13.1")


@pytest.mark.parametrize(
    ("advance", "repay", "end"),
    [(1000, 1080, date(2025, 7, 1)), (250_000_000, 263_000_000, date(2026, 1, 1)),
     (10**18, 10**18 + 5 * 10**16, date(2025, 1, 31))],
)  # fmt: skip
def test_single_repayment_closed_form(advance: int, repay: int, end: date) -> None:
    """One advance, one repayment: APRC = (repay / advance)^(1/t) - 1 (constructed example;
    t in years on the equal-months basis)."""
    start = date(2025, 1, 1)
    flows = [CashFlow.drawdown(start, advance), CashFlow.repayment(end, repay)]
    t = years_between(start, end, TimeBasis.EQUAL_MONTHS)
    expected = (D(repay) / D(advance)) ** (1 / t) - 1
    assert abs(eu_aprc(flows).rate - expected) < D("1e-12")


def test_matches_independent_bisection_on_an_irregular_schedule() -> None:
    """Constructed example with irregular dates, two drawdowns and a charge: our Newton result
    equals a separately written 1e-20 bisection of the same annex equation."""
    start = date(2025, 3, 17)
    flows = [
        CashFlow.drawdown(start, 5000),
        CashFlow.repayment(start, 35, "gas"),
        CashFlow.drawdown(date(2025, 5, 2), 2000),
        CashFlow.repayment(date(2025, 6, 30), 1900),
        CashFlow.repayment(date(2025, 11, 11), 2600),
        CashFlow.repayment(date(2026, 4, 1), 3100),
    ]
    for basis in TimeBasis:
        timed = [(f.signed, years_between(start, f.on, basis)) for f in flows]
        assert abs(eu_aprc(flows, basis=basis).rate - bisect_rate(timed)) < D("1e-12")


def test_zero_cost_gives_zero_and_negative_cost_a_negative_rate() -> None:
    start = date(2025, 1, 1)
    free = [CashFlow.drawdown(start, 1000), CashFlow.repayment(date(2026, 1, 1), 1000)]
    assert eu_aprc(free).rate == 0
    rebate = [CashFlow.drawdown(start, 1000), CashFlow.repayment(date(2026, 1, 1), 900)]
    assert abs(eu_aprc(rebate).rate - D("-0.1")) < D("1e-12")


def test_rejects_flows_that_are_not_a_loan() -> None:
    start = date(2025, 1, 1)
    with pytest.raises(InvalidLoanTerms, match="no repayment"):
        eu_aprc([CashFlow.drawdown(start, 1000)])
    with pytest.raises(InvalidLoanTerms, match="precedes the first drawdown"):
        eu_aprc([CashFlow.repayment(date(2024, 1, 1), 5), CashFlow.drawdown(start, 1000),
                  CashFlow.repayment(date(2026, 1, 1), 1100)])  # fmt: skip
    with pytest.raises(NoRateSolution):
        eu_aprc([CashFlow.drawdown(start, 1000), CashFlow.repayment(start, 1)])
