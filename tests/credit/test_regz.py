"""Reg Z APR against the published examples of 12 CFR 1026 Appendix J, paragraph (c).

Source: 12 CFR 1026 Appendix J, "(c) Examples for the actuarial method",
https://www.consumerfinance.gov/rules-policy/regulations/1026/J/ . Each case below gives the
example's number, its inputs, and the APR it publishes (percent, two decimals); we reproduce it
to that precision from the dates alone (unit-periods and fractions by Appendix J (b)(5)).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from backend.credit.pricing import MONTH, WEEK, CashFlow, InvalidLoanTerms, UnitPeriod, regz_apr
from backend.credit.pricing.dates import add_months
from backend.credit.pricing.regz import RegZFlow, regz_apr_of, single_payment_unit

D = Decimal


def monthly_flows(
    advance: str, payment: str, count: int, first: date, start: date, step: int = 1
) -> list[CashFlow]:
    payments = [CashFlow.repayment(add_months(first, k * step), D(payment)) for k in range(count)]
    return [CashFlow.drawdown(start, D(advance)), *payments]


@pytest.mark.parametrize(
    ("example", "flows", "unit", "published"),
    [
        # (c)(1)(i) monthly, regular first period: $5,000, 24 x $230, 1/10/1978 -> 2/10/1978.
        ("(c)(1)(i)", monthly_flows("5000", "230", 24, date(1978, 2, 10), date(1978, 1, 10)),
         MONTH, "9.69"),
        # (c)(1)(ii) monthly, long first period: $6,000, 36 x $200, 2/10/1978 -> 4/1/1978
        # (t = 1, f = 19/30).
        ("(c)(1)(ii)", monthly_flows("6000", "200", 36, date(1978, 4, 1), date(1978, 2, 10)),
         MONTH, "11.82"),
        # (c)(1)(iv) quarterly, long first period: $10,000, 40 x $385, 5/23/1978 -> 10/1/1978
        # (t = 1, f = 39/90).
        ("(c)(1)(iv)",
         monthly_flows("10000", "385", 40, date(1978, 10, 1), date(1978, 5, 23), step=3),
         UnitPeriod(months=3), "8.97"),
        # (c)(1)(v) weekly, long first period: $500, 30 x $17.60, 3/20/1978 -> 4/21/1978
        # (t = 4, f = 4/7, w = 52).
        ("(c)(1)(v)",
         [CashFlow.drawdown(date(1978, 3, 20), D(500))]
         + [CashFlow.repayment(date(1978, 4, 21) + timedelta(weeks=k), D("17.60"))
            for k in range(30)],
         WEEK, "14.96"),
        # (c)(2)(i) odd first payment: $5,000, $250 on 2/10/1978 then 23 x $230 from 3/10/1978.
        ("(c)(2)(i)",
         [CashFlow.drawdown(date(1978, 1, 10), D(5000)),
          CashFlow.repayment(date(1978, 2, 10), D(250)),
          *monthly_flows("0", "230", 23, date(1978, 3, 10), date(1978, 1, 10))[1:]],
         MONTH, "10.08"),
        # (c)(3)(i) odd final payment: $5,000, 23 x $230 from 2/10/1978, then $280.
        ("(c)(3)(i)",
         [*monthly_flows("5000", "230", 23, date(1978, 2, 10), date(1978, 1, 10)),
          CashFlow.repayment(add_months(date(1978, 2, 10), 23), D(280))],
         MONTH, "10.50"),
        # (c)(4)(i) odd first and final payments: $5,000; $250 on 2/10/1978; 22 x $230 from
        # 3/10/1978; $280 last.
        ("(c)(4)(i)",
         [CashFlow.drawdown(date(1978, 1, 10), D(5000)),
          CashFlow.repayment(date(1978, 2, 10), D(250)),
          *monthly_flows("0", "230", 22, date(1978, 3, 10), date(1978, 1, 10))[1:],
          CashFlow.repayment(add_months(date(1978, 3, 10), 22), D(280))],
         MONTH, "10.90"),
        # (c)(5)(i) single advance, single payment, term in days: $1,000 on 1/3/1978,
        # $1,080 on 9/15/1978 (255 days, w = 365/255).
        ("(c)(5)(i)",
         [CashFlow.drawdown(date(1978, 1, 3), D(1000)),
          CashFlow.repayment(date(1978, 9, 15), D(1080))],
         single_payment_unit(date(1978, 1, 3), date(1978, 9, 15)), "11.45"),
    ],
)  # fmt: skip
def test_appendix_j_examples(
    example: str, flows: list[CashFlow], unit: UnitPeriod, published: str
) -> None:
    assert regz_apr(flows, unit).percent == D(published), example


def test_appendix_j_semimonthly_example() -> None:
    """(c)(1)(iii) semimonthly, short first period: $5,000, 24 x $219.17 on the 1st and 16th,
    2/23/1978 -> 3/1/1978: the first period is 6 days of a 15-day fraction (f = 6/15, t = 0),
    w = 24. Published APR 10.34 %."""
    flows = [RegZFlow(D(5000), 0, D(0), advance=True)]
    flows += [RegZFlow(D("219.17"), k, D(6) / 15, advance=False) for k in range(24)]
    assert regz_apr_of(flows, D(24)).percent == D("10.34")


def test_single_payment_whole_years_closed_form() -> None:
    """A single payment after exactly two years has unit-period one year (Appendix J
    (b)(4)(iii)), so i = (P/A)^(1/2) - 1 in closed form: $1,000 -> $1,300 gives 14.0175 %."""
    start, end = date(1978, 1, 3), date(1980, 1, 3)
    flows = [CashFlow.drawdown(start, D(1000)), CashFlow.repayment(end, D(1300))]
    apr = regz_apr(flows, single_payment_unit(start, end))
    expected = D("1.3").sqrt() - 1
    assert abs(apr.rate - expected) < D("1e-12")


def test_unit_period_must_be_months_or_days() -> None:
    with pytest.raises(InvalidLoanTerms, match="months or of days"):
        UnitPeriod(months=1, days=7)
    with pytest.raises(InvalidLoanTerms, match="exceeds one year"):
        UnitPeriod(months=13)
