"""DeFi pools: price at the utilisation AFTER this borrow, from the pool read once per block.

The APR is the pool's kinked model evaluated by `pricing.defi_rates.borrow_rate_after` over the
pool's books at the current block. The books come from `PoolStateCache`: one read per (chain,
pool, block) for every concurrent request, not one per request. The contract's own
`borrowRateAfter` is read at probe amounts in that same per-block read and must agree with our
model to the wei of ray, else the quote is an error (our model copy is out of date).
"""

from __future__ import annotations

from backend.credit.models import Outcome
from backend.credit.pool_state import PoolStateCache
from backend.credit.pricing.defi_rates import borrow_rate_after, ray_to_decimal
from backend.credit.pricing.errors import InsufficientPoolLiquidity
from backend.credit.sources import Ask, RawQuote, SourceResult


async def quote_pool(cache: PoolStateCache, ask: Ask, *, pool: str) -> SourceResult:
    reading = await cache.reading(ask.chain_id, pool)
    disagreement = reading.model_disagreement()
    if disagreement is not None:
        return SourceResult(Outcome.ERROR, reason=disagreement, counts_as_failure=True)
    try:
        rate = borrow_rate_after(reading.model, reading.state, ask.amount)
    except InsufficientPoolLiquidity as exc:
        return SourceResult(Outcome.DECLINED, reason=f"pool liquidity: {exc.detail}")
    return SourceResult(
        Outcome.QUOTED,
        RawQuote(
            nominal_apr=ray_to_decimal(rate),
            origination_fee=0,
            provider_address=pool.lower(),
            rate_ray=rate,
        ),
    )
