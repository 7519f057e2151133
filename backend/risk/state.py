"""The pure fold from risk effects to state: loans, collateral, prices, asset configs, health.

Kept free of the database so the projection (alerts), the service (reads) and the tests all use
the same arithmetic. The health factor mirrors CollateralManager exactly:
collateral value x liquidation threshold / debt value, values = amount x price / 10^(token
decimals + feed decimals); it is undefined (None) while either side is zero or unpriced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Context, Decimal
from fractions import Fraction
from typing import Literal

Status = Literal["active", "repaid", "defaulted", "liquidated"]
BPS = 10_000
_CONTEXT = Context(prec=60)


@dataclass
class Loan:
    loan_id: int
    borrower: str
    provider: str
    asset: str
    collateral_asset: str
    principal: int
    outstanding: int
    repaid: int = 0
    repayments: int = 0
    collateral: int = 0
    seized: int = 0
    liquidations: int = 0
    status: Status = "active"

    @property
    def open(self) -> bool:
        return self.status in ("active", "liquidated") and self.outstanding > 0


@dataclass(frozen=True)
class AssetConfig:
    feed: str
    threshold_bps: int
    token_decimals: int
    feed_decimals: int


@dataclass(frozen=True)
class Effect:
    """One effect row in a common shape, ordered by `position` = (block_number, log_index)."""

    position: tuple[int, int]
    block_hash: str
    table: Literal["loan", "price", "config"]
    kind: str = ""
    loan_id: int = 0
    borrower: str | None = None
    provider: str | None = None
    asset: str | None = None
    collateral_asset: str | None = None
    amount: int = 0
    after: int | None = None
    feed: str = ""
    answer: int = 0
    threshold_bps: int = 0
    token_decimals: int = 0
    feed_decimals: int = 0


@dataclass
class RiskState:
    loans: dict[int, Loan] = field(default_factory=dict)
    prices: dict[str, int] = field(default_factory=dict)  # feed -> latest answer
    configs: dict[str, AssetConfig] = field(default_factory=dict)  # asset -> config

    def apply(self, effect: Effect) -> list[int]:
        """Fold one effect in; return the loan ids whose health it may have changed."""
        if effect.table == "price":
            self.prices[effect.feed] = effect.answer
            return self.loans_priced_by(effect.feed)
        if effect.table == "config":
            assert effect.asset is not None
            self.configs[effect.asset] = AssetConfig(
                effect.feed, effect.threshold_bps, effect.token_decimals, effect.feed_decimals
            )
            return self.loans_priced_by(effect.feed)
        return self._apply_loan(effect)

    def _apply_loan(self, e: Effect) -> list[int]:
        if e.kind == "opened":
            assert e.borrower and e.provider and e.asset and e.collateral_asset
            self.loans[e.loan_id] = Loan(
                e.loan_id, e.borrower, e.provider, e.asset, e.collateral_asset, e.amount, e.amount
            )
            return [e.loan_id]
        loan = self.loans.get(e.loan_id)
        if loan is None:  # an event of a loan opened before the watcher's start block
            return []
        if e.kind == "repaid":
            loan.repaid += e.amount
            loan.repayments += 1
            loan.outstanding = e.after or 0
            if loan.outstanding == 0 and loan.status == "active":
                loan.status = "repaid"
        elif e.kind == "defaulted":
            loan.status, loan.outstanding = "defaulted", e.after or 0
        elif e.kind == "closed":
            written_off = e.after or 0
            loan.status = "defaulted" if written_off else "repaid"
            loan.outstanding = 0
        elif e.kind == "deposited":
            loan.collateral += e.amount
        elif e.kind == "withdrawn":
            loan.collateral -= e.amount
        elif e.kind == "liquidated":
            loan.collateral -= e.amount
            loan.seized += e.amount
            loan.liquidations += 1
            if loan.status == "active":
                loan.status = "liquidated"
        return [e.loan_id]

    def loans_priced_by(self, feed: str) -> list[int]:
        assets = {a for a, c in self.configs.items() if c.feed == feed}
        return [i for i, loan in self.loans.items() if {loan.asset, loan.collateral_asset} & assets]

    def value(self, asset: str, amount: int) -> Fraction | None:
        """`amount` of `asset` in the feeds' quote currency (None if unconfigured/unpriced)."""
        config = self.configs.get(asset)
        price = self.prices.get(config.feed) if config else None
        if config is None or price is None or price <= 0:
            return None
        return Fraction(amount * price, 10 ** (config.token_decimals + config.feed_decimals))

    def price(self, asset: str) -> Decimal | None:
        """One unit of `asset` in the feed's quote currency (None if unconfigured/unpriced)."""
        config = self.configs.get(asset)
        answer = self.prices.get(config.feed) if config else None
        if config is None or answer is None or answer <= 0:
            return None
        return to_decimal(Fraction(answer, 10**config.feed_decimals))

    def health_factor(self, loan_id: int) -> Decimal | None:
        """Collateral value x threshold / debt value, as CollateralManager computes it."""
        loan = self.loans.get(loan_id)
        if loan is None or not loan.open or loan.collateral <= 0:
            return None
        config = self.configs.get(loan.collateral_asset)
        collateral = self.value(loan.collateral_asset, loan.collateral)
        debt = self.value(loan.asset, loan.outstanding)
        if config is None or collateral is None or not debt:
            return None
        ratio = collateral * config.threshold_bps / (debt * BPS)
        return to_decimal(ratio)

    def exposure(self, wallet: str) -> dict[str, int]:
        """Outstanding debt of `wallet`'s open and defaulted loans, per loan asset."""
        totals: dict[str, int] = {}
        for loan in self.loans.values():
            if loan.borrower == wallet and loan.outstanding > 0:
                totals[loan.asset] = totals.get(loan.asset, 0) + loan.outstanding
        return totals


def to_decimal(value: Fraction) -> Decimal:
    """An exact ratio as a Decimal with 18 places, rounded down (like the contract's WAD)."""
    quotient = _CONTEXT.divide(Decimal(value.numerator), Decimal(value.denominator))
    return quotient.quantize(Decimal("1e-18"), rounding=ROUND_DOWN, context=_CONTEXT)


def fold(effects: list[Effect]) -> RiskState:
    state = RiskState()
    for effect in sorted(effects, key=lambda e: e.position):
        state.apply(effect)
    return state
