"""Each quote is normalised the moment its answer arrives, while slower lenders are still
awaited.

Normalising is the costliest CPU step of a credit request (an IRR solve per quote, in Decimal).
Done after the fan-out, it all lands between the slowest lender's answer and the borrower's
response; done on arrival, it fills the wait instead, and what is left after the slowest answer
is one quote's pricing, the ranking and the writes. The result is the same either way: the
inputs (the request, the quote, its chain's market) are all known when the answer arrives, or,
when the market read is still running, once it lands. Whatever was not priced by the end of
the fan-out is priced in phase 3 exactly as before.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Mapping
from functools import partial

from backend.credit.models import Outcome
from backend.credit.normalise import Normalised, normalise
from backend.credit.phases import Market, Plan, Prepared, PricedQuote
from backend.credit.pricing.errors import PricingError
from backend.credit.sources import RawQuote, SourceResult

logger = logging.getLogger("credagg.credit.pricing")


def price_quote(
    prepared: Prepared, plan: Plan, quote: RawQuote, market: Market
) -> Normalised | PricingError:
    """The one place a raw quote becomes a normalised one (early or in phase 3)."""
    ask = prepared.ask
    try:
        return normalise(
            quote,
            quote_id=str(uuid.uuid4()),
            provider_id=plan.provider_id,
            source=plan.source,
            amount=ask.amount,
            term_days=ask.term_days,
            debt=prepared.debt_chains[plan.chain_id],
            collateral=prepared.collateral,
            prices=market.prices,
            gas_wei=market.gas_wei,
            start=prepared.now.date(),
            expires_at=prepared.expires_at,
            borrower=prepared.wallet,
            aggregator=market.aggregator,
            nonce=market.nonce,
        )
    except PricingError as exc:
        return exc


class ArrivalPricer:
    """The fan-out's result hook: prices each quote once both it and its chain's market are in.

    Runs on the event loop, synchronously (no await), so it never interleaves with itself and a
    deadline cannot cut a pricing in half.
    """

    def __init__(
        self,
        prepared: Prepared,
        plans: Iterable[Plan],
        markets: Mapping[int, asyncio.Future[Market]],
    ) -> None:
        self._prepared = prepared
        self._plans = {plan.provider_id: plan for plan in plans}
        self._markets = markets
        self._waiting: dict[int, list[tuple[Plan, RawQuote]]] = {}
        self.priced: dict[int, PricedQuote] = {}
        for chain_id, future in markets.items():
            future.add_done_callback(partial(self._market_in, chain_id))

    def __call__(self, provider_id: int, result: SourceResult) -> None:
        plan = self._plans.get(provider_id)
        if plan is None or result.outcome is not Outcome.QUOTED or result.quote is None:
            return
        market = self._market(plan.chain_id)
        if market is None:
            self._waiting.setdefault(plan.chain_id, []).append((plan, result.quote))
        else:
            self._price(plan, result.quote, market)

    def _market(self, chain_id: int) -> Market | None:
        future = self._markets.get(chain_id)
        if future is None or not future.done() or future.cancelled():
            return None
        return future.result()  # the read never raises: a failed one is its fallback market

    def _market_in(self, chain_id: int, _future: object) -> None:
        market = self._market(chain_id)
        waiting = self._waiting.pop(chain_id, [])
        if market is not None:
            for plan, quote in waiting:
                self._price(plan, quote, market)

    def _price(self, plan: Plan, quote: RawQuote, market: Market) -> None:
        try:
            result = price_quote(self._prepared, plan, quote, market)
        except Exception as exc:  # a bug here must cost only the head start: phase 3 retries
            logger.warning(
                "pricing on arrival failed",
                extra={"provider_id": plan.provider_id, "error": repr(exc)},
            )
            return
        self.priced[plan.provider_id] = PricedQuote(quote, result)
