"""Adaptive block ranges for `eth_getLogs`: shrink when the provider refuses, grow on success.

Multiplicative decrease on a refusal (halve), multiplicative increase on success (double, capped)
— the AIMD-like rule that converges to the largest range the provider accepts for the current
event density, without knowing the provider's limit.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AdaptiveRange:
    span: int = 2_000
    minimum: int = 1
    maximum: int = 100_000
    growth: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.span <= self.maximum:
            raise ValueError("need 1 <= minimum <= span <= maximum")

    def shrink(self) -> bool:
        """Halve the span; False if it is already at the minimum (the refusal is not about size)."""
        if self.span <= self.minimum:
            return False
        self.span = max(self.minimum, self.span // 2)
        return True

    def grow(self) -> None:
        self.span = min(self.maximum, self.span * self.growth)
