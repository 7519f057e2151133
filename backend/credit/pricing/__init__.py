"""Pure credit pricing: no database, no HTTP, Decimal and int only.

* `schedule`: loan terms -> dated installments (conventions in its docstring);
* `eu_aprc`: the EU APRC (2008/48/EC Annex I / 2023/2225 Annex III);
* `regz`: the US Reg Z Appendix J actuarial APR;
* `collateral`: LTV, health factor, liquidation price;
* `defi_rates`: the on-chain kinked rate model at the utilisation after the borrow;
* `ranking`: order and filter normalised quotes;
* `quote.price_loan`: all figures of one quote at once.
"""

from backend.credit.pricing.cashflows import CashFlow, Direction, total_cost_of_credit
from backend.credit.pricing.collateral import (
    CollateralMetrics,
    TokenAmount,
    collateral_metrics,
    price_from_feed,
)
from backend.credit.pricing.defi_rates import (
    RAY,
    SECONDS_PER_YEAR,
    KinkedRateModel,
    PoolState,
    apy,
    borrow_rate_after,
    ray_to_decimal,
    utilization_after,
)
from backend.credit.pricing.errors import (
    InsufficientPoolLiquidity,
    InvalidCollateral,
    InvalidLoanTerms,
    NoRateSolution,
    PricingError,
)
from backend.credit.pricing.eu_aprc import Aprc, TimeBasis, compounded_rate, eu_aprc
from backend.credit.pricing.quote import LoanPricing, price_loan
from backend.credit.pricing.ranking import (
    BorrowerConstraints,
    NormalisedQuote,
    Ranking,
    SecuredPreference,
    rank_quotes,
)
from backend.credit.pricing.regz import MONTH, WEEK, YEAR, RegZApr, UnitPeriod, regz_apr
from backend.credit.pricing.schedule import (
    FeeTreatment,
    Frequency,
    Installment,
    LoanTerms,
    Repayment,
    Schedule,
    build_schedule,
)

__all__ = [
    "MONTH",
    "RAY",
    "SECONDS_PER_YEAR",
    "WEEK",
    "YEAR",
    "Aprc",
    "BorrowerConstraints",
    "CashFlow",
    "CollateralMetrics",
    "Direction",
    "FeeTreatment",
    "Frequency",
    "Installment",
    "InsufficientPoolLiquidity",
    "InvalidCollateral",
    "InvalidLoanTerms",
    "KinkedRateModel",
    "LoanPricing",
    "LoanTerms",
    "NoRateSolution",
    "NormalisedQuote",
    "PoolState",
    "PricingError",
    "Ranking",
    "RegZApr",
    "Repayment",
    "Schedule",
    "SecuredPreference",
    "TimeBasis",
    "TokenAmount",
    "UnitPeriod",
    "apy",
    "borrow_rate_after",
    "build_schedule",
    "collateral_metrics",
    "compounded_rate",
    "eu_aprc",
    "price_from_feed",
    "price_loan",
    "rank_quotes",
    "ray_to_decimal",
    "regz_apr",
    "total_cost_of_credit",
    "utilization_after",
]
