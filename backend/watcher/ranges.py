"""Adaptive block ranges for `eth_getLogs`: shrink when the provider refuses, grow on success.

Multiplicative decrease on a refusal (halve), multiplicative increase on success (double, capped)
— the AIMD-like rule that converges to the largest range the provider accepts for the current
event density, without knowing the provider's limit.

Success alone is not a reason to grow without bound: a backfill overlaps reading one range with
writing the previous one, which only pays when there are several ranges. So the span grows only
while a range returned fewer than `target_logs` logs, and halves when one returned more than
twice that (dense blocks): ranges converge on about `target_logs` logs each.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AdaptiveRange:
    span: int = 2_000
    minimum: int = 1
    maximum: int = 100_000
    growth: int = 2
    target_logs: int = 10_000

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.span <= self.maximum:
            raise ValueError("need 1 <= minimum <= span <= maximum")
        if self.target_logs < 1:
            raise ValueError("need target_logs >= 1")

    def shrink(self) -> bool:
        """Halve the span; False if it is already at the minimum (the refusal is not about size)."""
        if self.span <= self.minimum:
            return False
        self.span = max(self.minimum, self.span // 2)
        return True

    def grow(self) -> None:
        self.span = min(self.maximum, self.span * self.growth)

    def observe(self, logs: int) -> None:
        """Adjust after a successful range of `logs` logs: towards `target_logs` per range."""
        if logs < self.target_logs:
            self.grow()
        elif logs > 2 * self.target_logs:
            self.span = max(self.minimum, self.span // 2)
