"""DeFi pools: read the pool on-chain and price at the utilisation AFTER this borrow.

The APR is the pool's kinked model evaluated by `pricing.defi_rates.borrow_rate_after` over the
pool's books as read now; the contract's own `borrowRateAfter(amount)` is read in the same pass
and must agree to the wei of ray, else the quote is an error (our model copy is out of date).
"""

from __future__ import annotations

import asyncio

from backend.credit.chain import ChainReader
from backend.credit.models import Outcome
from backend.credit.pricing.defi_rates import borrow_rate_after, ray_to_decimal
from backend.credit.pricing.errors import InsufficientPoolLiquidity
from backend.credit.sources import Ask, RawQuote, SourceResult


async def quote_pool(reader: ChainReader, ask: Ask, *, pool: str) -> SourceResult:
    snapshot = await asyncio.to_thread(reader.pool, ask.chain_id, pool, ask.amount)
    try:
        rate = borrow_rate_after(snapshot.model, snapshot.state, ask.amount)
    except InsufficientPoolLiquidity as exc:
        return SourceResult(Outcome.DECLINED, reason=f"pool liquidity: {exc.detail}")
    if rate != snapshot.rate_after:
        return SourceResult(
            Outcome.ERROR,
            reason=f"pool {pool} says borrowRateAfter={snapshot.rate_after}, our model {rate}",
            counts_as_failure=True,
        )
    return SourceResult(
        Outcome.QUOTED,
        RawQuote(
            nominal_apr=ray_to_decimal(rate),
            origination_fee=0,
            provider_address=pool.lower(),
            rate_ray=rate,
        ),
    )
