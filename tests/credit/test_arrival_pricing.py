"""Quotes are priced as their answers arrive, not after the slowest lender (issue 5's latency).

Real fan-outs on a real event loop: the lenders are coroutines answering after real sleeps, and
the pricing is the real `normalise`. What is checked is when the work happens (a fast quote is
already priced while a slow lender is still being awaited; a quote that beat its chain's market
read is priced the moment the market lands), that the early result is the one phase 3 would
have made, and that a fault in the early pricing costs only the head start.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from backend.credit import arrival_pricing
from backend.credit.arrival_pricing import ArrivalPricer
from backend.credit.assets import AssetEntry, AssetRegistry
from backend.credit.fanout import Call, fan_out
from backend.credit.lender_http import LenderPoster
from backend.credit.models import Outcome
from backend.credit.normalise import Normalised, Prices, normalise
from backend.credit.phases import Market, Plan, Prepared
from backend.credit.risk import RiskProfile
from backend.credit.schemas import CreditRequestIn
from backend.credit.sources import Ask, RawQuote, SourceResult

CHAIN = 8453
USDC = AssetEntry(symbol="USDC", chain_id=CHAIN, address="0x" + "ab" * 20, decimals=6)
MARKET = Market(prices=Prices(), gas_wei=0, aggregator="0x" + "cd" * 20, nonce=7)


def _prepared(provider_ids: list[int]) -> Prepared:
    now = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
    body = CreditRequestIn(amount=str(5_000 * 10**6), asset="USDC", term_days=90, purpose="t")
    ask = Ask(
        request_id="00000000-0000-4000-8000-000000000001",
        wallet="0x" + "11" * 20,
        asset="USDC",
        amount=5_000 * 10**6,
        term_days=90,
        chain_id=CHAIN,
        score=700,
        reasons=(),
        collateral=None,
        respond_by=(now + timedelta(seconds=5)).isoformat(),
    )
    return Prepared(
        now=now,
        wallet=ask.wallet,
        body=body,
        ask=ask,
        debt_chains={CHAIN: USDC},
        registry=AssetRegistry((USDC,), {}),
        collateral=None,
        risk=RiskProfile(score=700, reasons=(), loans=0, outstanding=0, defaults=0),
        expires_at=now + timedelta(minutes=5),
        outcomes={},
        plans=[_plan(pid) for pid in provider_ids],
        half_open=frozenset(),
        breakers={},
    )


async def _unused(_client: LenderPoster) -> SourceResult:
    raise AssertionError("the fan-out in these tests runs its own calls")


def _plan(provider_id: int) -> Plan:
    return Plan(provider_id, "traditional", CHAIN, _unused)


def _quote(provider_id: int) -> RawQuote:
    return RawQuote(
        nominal_apr=Decimal("0.08") + Decimal(provider_id) / 1000,
        origination_fee=provider_id * 10**6,
        provider_address="0x" + f"{provider_id:02x}" * 20,
    )


def _answer(provider_id: int, after: float, *, quoted: bool = True) -> Call:
    async def run() -> SourceResult:
        await asyncio.sleep(after)
        if not quoted:
            return SourceResult(Outcome.DECLINED, reason="not today")
        return SourceResult(Outcome.QUOTED, quote=_quote(provider_id))

    return Call(provider_id, run)


def _as_phase_3_priced_it(prepared: Prepared, pid: int, quote: RawQuote, quote_id: str) -> Any:
    """The oracle: `normalise` called as phase 3 called it before pricing moved (same id)."""
    ask = prepared.ask
    return normalise(
        quote,
        quote_id=quote_id,
        provider_id=pid,
        source="traditional",
        amount=ask.amount,
        term_days=ask.term_days,
        debt=USDC,
        collateral=None,
        prices=MARKET.prices,
        gas_wei=MARKET.gas_wei,
        start=prepared.now.date(),
        expires_at=prepared.expires_at,
        borrower=prepared.wallet,
        aggregator=MARKET.aggregator,
        nonce=MARKET.nonce,
    )


def test_every_answer_in_time_reaches_the_hook_once_with_its_final_duration() -> None:
    seen: list[tuple[int, SourceResult]] = []

    async def main() -> dict[int, SourceResult]:
        calls = [_answer(1, 0.0), _answer(2, 0.05, quoted=False), _answer(3, 30)]
        return await fan_out(
            calls,
            provider_timeout=2,
            deadline=0.3,
            on_result=lambda pid, r: seen.append((pid, r)),
        )

    results = asyncio.run(main())
    assert [pid for pid, _ in seen] == [1, 2]  # in order of arrival; 3 was cut by the deadline
    assert all(results[pid] == result for pid, result in seen)  # durations included
    assert results[3].outcome is Outcome.TIMED_OUT


def test_a_fast_quote_is_priced_while_a_slow_lender_is_still_awaited() -> None:
    prepared = _prepared([1, 2])
    priced_while_waiting: list[int] = []

    async def main() -> ArrivalPricer:
        market: asyncio.Future[Market] = asyncio.get_running_loop().create_future()
        market.set_result(MARKET)
        pricer = ArrivalPricer(prepared, prepared.plans, {CHAIN: market})

        async def slow() -> SourceResult:
            await asyncio.sleep(0.2)
            priced_while_waiting.extend(pricer.priced)  # what was done before this answer
            return SourceResult(Outcome.QUOTED, quote=_quote(2))

        await fan_out(
            [_answer(1, 0.0), Call(2, slow)], provider_timeout=2, deadline=1, on_result=pricer
        )
        return pricer

    pricer = asyncio.run(main())
    assert priced_while_waiting == [1]
    assert sorted(pricer.priced) == [1, 2]
    for pid in (1, 2):
        early = pricer.priced[pid].result
        assert isinstance(early, Normalised)
        assert pricer.priced[pid].quote == _quote(pid)
        assert early == _as_phase_3_priced_it(prepared, pid, _quote(pid), early.ranking.quote_id)


def test_a_quote_that_beat_its_market_read_is_priced_when_the_market_lands() -> None:
    prepared = _prepared([1, 2])

    async def main() -> tuple[list[int], ArrivalPricer]:
        market: asyncio.Future[Market] = asyncio.get_running_loop().create_future()
        pricer = ArrivalPricer(prepared, prepared.plans, {CHAIN: market})
        before_market: list[int] = []

        async def slow_decline() -> SourceResult:
            await asyncio.sleep(0.1)
            before_market.extend(pricer.priced)
            market.set_result(MARKET)
            await asyncio.sleep(0.05)
            return SourceResult(Outcome.DECLINED, reason="no")

        await fan_out(
            [_answer(1, 0.0), Call(2, slow_decline)],
            provider_timeout=2,
            deadline=1,
            on_result=pricer,
        )
        return before_market, pricer

    before_market, pricer = asyncio.run(main())
    assert before_market == []  # quote 1 had to wait for the market
    assert list(pricer.priced) == [1]  # and was priced once it came; the decline never is


def test_a_fault_in_early_pricing_costs_only_the_head_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug in the normaliser must not fail the fan-out: the answer is kept, unpriced, and
    phase 3 prices it (and reports its error) as it always did."""
    prepared = _prepared([1])

    def broken(*_args: Any, **_kwargs: Any) -> Normalised:
        raise RuntimeError("bug")

    monkeypatch.setattr(arrival_pricing, "normalise", broken)

    async def main() -> tuple[dict[int, SourceResult], ArrivalPricer]:
        market: asyncio.Future[Market] = asyncio.get_running_loop().create_future()
        market.set_result(MARKET)
        pricer = ArrivalPricer(prepared, prepared.plans, {CHAIN: market})
        results = await fan_out([_answer(1, 0.0)], provider_timeout=2, deadline=1, on_result=pricer)
        return results, pricer

    results, pricer = asyncio.run(main())
    assert results[1].outcome is Outcome.QUOTED
    assert pricer.priced == {}
