"""The credit request pipeline (no HTTP, flushes, never commits).

compliance (sanctions -> 403 before anything is sent; KYC tier vs each card) -> interim risk
profile -> eligible providers -> circuit breakers -> concurrent fan-out (per-provider timeout,
one overall deadline) -> normalise -> rank -> persist request, quotes, per-provider outcomes ->
one quote_set receipt.

Three phases, so the endpoint can be async and hold nothing while it waits on the network:
`prepare_credit_request` (sync, read-only: the caller ends its transaction afterwards),
`gather_quotes` (async, on the server's loop with the shared HTTP pool; breaker writes in short
transactions of their own; each quote normalised as it arrives, `backend.credit.arrival_pricing`)
and `finish_credit_request` (sync: normalise what is left, rank, persist). The values they hand
each other are in `backend.credit.phases`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from sqlalchemy.orm import Session

from backend.config import Settings
from backend.credit import circuit_breaker, late_answers
from backend.credit.arrival_pricing import ArrivalPricer, price_quote
from backend.credit.assets import AssetEntry, AssetRegistry, asset_registry
from backend.credit.breaker_repository import breaker_rows
from backend.credit.chain import ChainReader
from backend.credit.circuit_breaker import Admission
from backend.credit.compliance import kyc_tier, screen_sanctions
from backend.credit.exceptions import CreditRequestNotFound, UnknownAsset
from backend.credit.fanout import Call, fan_out
from backend.credit.lender_http import LenderPoster
from backend.credit.models import (
    CreditQuote,
    CreditRequest,
    Outcome,
    ProviderOutcome,
)
from backend.credit.normalise import Collateral, Normalised, Prices, asset_ref
from backend.credit.phases import Gathered, Market, Plan, Prepared, PricedQuote, Source
from backend.credit.pool_state import PoolStateCache
from backend.credit.pricing.collateral import price_from_feed
from backend.credit.pricing.errors import PricingError
from backend.credit.pricing.ranking import BorrowerConstraints, rank_quotes
from backend.credit.quotes import request_view
from backend.credit.repository import (
    CreditRepository,
    ProviderConfig,
    WalletCreditRepository,
)
from backend.credit.risk import RiskProfile, risk_profile
from backend.credit.schemas import CreditRequestIn, CreditRequestView
from backend.credit.sources import Ask, SourceResult
from backend.credit.sources.defi import quote_pool
from backend.credit.sources.traditional import card_ineligibility, quote_card, quote_http
from backend.db import SessionFactory
from backend.kit.columns import utcnow
from backend.kit.crypto import FieldCipher
from backend.providers.models import ProviderKind
from backend.providers.pii import ProviderSealer
from backend.providers.rate_cards import RateCard
from backend.providers.webhooks.delivery import signing_secrets
from backend.receipts.models import ReceiptKind
from backend.receipts.service import (
    PreparedReceipt,
    ReceiptDraft,
    append_prepared,
    format_issued_at,
    prepare_receipts,
    signer_from_settings,
)
from chain_adapters.exceptions import ChainError

logger = logging.getLogger("credagg.credit")

RANKING_RULE = "effective-annual-rate.total-cost.quote-id.v1"

T = TypeVar("T")


def prepare_credit_request(
    session: Session,
    wallet: str,
    body: CreditRequestIn,
    *,
    settings: Settings,
    reader: ChainReader,
    pools: PoolStateCache,
    cipher: FieldCipher,
    now: datetime | None = None,
    overloaded: bool = False,
) -> Prepared:
    """Phase 1: screen, score, pick eligible providers, read their breakers. Writes nothing, so
    the caller may end this transaction before the network wait.

    `overloaded`: the request cannot ask anyone and still answer in time (admission sent it
    to the overload lane, `backend.credit.admission`); every active provider is listed as
    skipped, without planning its call (no rate card checks, no webhook secrets decrypted, no
    breakers read), so overload costs little."""
    now = now or utcnow()
    wallet = wallet.lower()
    screen_sanctions(wallet, settings.credit_sanctions_file)
    registry = asset_registry(settings.credit_assets_file)
    debt_chains = {e.chain_id: e for e in registry.require(body.asset, body.chain_id, "asset")}
    collateral = _collateral(registry, body)
    tier = kyc_tier(session, wallet)
    risk = risk_profile(session, wallet, reader=reader, now=now)
    respond_by = now + timedelta(seconds=settings.credit_fanout_deadline)
    default_chain = (
        collateral.entry.chain_id
        if collateral and collateral.entry.chain_id in debt_chains
        else next(iter(debt_chains))
    )
    ask = Ask(
        request_id=str(uuid.uuid4()),
        wallet=wallet,
        asset=body.asset,
        amount=int(body.amount),
        term_days=body.term_days,
        chain_id=default_chain,
        score=risk.score,
        reasons=risk.reasons,
        collateral=body.collateral.model_dump() if body.collateral else None,
        respond_by=format_issued_at(respond_by),
    )

    outcomes: dict[int, SourceResult] = {}
    eligible: list[Plan] = []
    if overloaded:
        outcomes = {pid: _skipped_overloaded() for pid in CreditRepository(session).active_ids()}
    for config in [] if overloaded else CreditRepository(session).active_providers():
        plan_or_reason = _plan(config, ask, debt_chains, collateral, tier, cipher, pools, now)
        if isinstance(plan_or_reason, str):
            outcomes[config.provider.id] = SourceResult(Outcome.INELIGIBLE, reason=plan_or_reason)
        else:
            eligible.append(plan_or_reason)

    breakers = circuit_breaker.snapshot(
        breaker_rows(session, (plan.provider_id for plan in eligible))
    )
    plans: list[Plan] = []
    half_open: set[int] = set()
    cooldown = settings.credit_breaker_cooldown_seconds
    for plan in eligible:
        admission = circuit_breaker.assess(breakers, plan.provider_id, now=now, cooldown=cooldown)
        if admission is Admission.SKIP:
            outcomes[plan.provider_id] = _circuit_open()
            continue
        if admission is None:
            half_open.add(plan.provider_id)
        plans.append(plan)
    return Prepared(
        now=now,
        wallet=wallet,
        body=body,
        ask=ask,
        debt_chains=debt_chains,
        registry=registry,
        collateral=collateral,
        risk=risk,
        expires_at=now + timedelta(seconds=settings.credit_quote_ttl_seconds),
        outcomes=outcomes,
        plans=plans,
        half_open=frozenset(half_open),
        breakers=breakers,
    )


async def gather_quotes(
    prepared: Prepared,
    *,
    settings: Settings,
    reader: ChainReader,
    client: LenderPoster,
    sessions: SessionFactory,
    deadline: float,
    pools: PoolStateCache | None = None,
) -> Gathered:
    """Phase 2: claim half-open probes, fan out within `deadline` seconds, count the results
    on the breakers. Breaker writes are short transactions of their own (never the request's),
    so call this with no transaction of the request's session open."""
    started = time.monotonic()
    slots = late_answers.SlotBatch(sessions, prepared.ask.request_id)
    respond_by = datetime.fromisoformat(prepared.ask.respond_by)
    cooldown = settings.credit_breaker_cooldown_seconds

    def before(plans: list[Plan]) -> tuple[list[Plan], dict[int, SourceResult]]:
        """Claim half-open probes, then open the webhook lenders' answer slots: one thread
        hop, one short transaction each, whatever the number of lenders."""
        skipped: dict[int, SourceResult] = {}
        if prepared.half_open:
            won = circuit_breaker.claim_probes(
                sessions, prepared.half_open, now=utcnow(), cooldown=cooldown
            )
            skipped = {pid: _circuit_open() for pid in prepared.half_open - won}
            plans = [plan for plan in plans if plan.provider_id not in skipped]
        slots.open((plan.provider_id for plan in plans if plan.posts), respond_by)
        return plans, skipped

    plans: list[Plan] = prepared.plans
    skipped: dict[int, SourceResult] = {}
    if deadline > 0 and (prepared.half_open or any(plan.posts for plan in plans)):
        plans, skipped = await asyncio.to_thread(before, plans)
    remaining = max(0.0, deadline - (time.monotonic() - started))
    chains = sorted({plan.chain_id for plan in plans})
    late_answers.SESSIONS.set(sessions)  # lenders answering 202 post to their slot later
    token = late_answers.BATCH.set(slots)
    try:
        results, markets, priced = await _gather(
            plans, chains, reader, prepared, client, settings, deadline=remaining, pools=pools
        )
    except BaseException:
        await asyncio.shield(asyncio.to_thread(slots.close))
        raise
    finally:
        late_answers.BATCH.reset(token)
    fanout_seconds = time.monotonic() - started
    writes = {
        pid: not result.counts_as_failure
        for pid, result in results.items()
        if circuit_breaker.needs_write(prepared.breakers, pid, success=not result.counts_as_failure)
    }

    def after() -> None:
        """Close the slots still pending and count the results on the breakers (one hop)."""
        slots.close()
        if writes:
            circuit_breaker.record_many(
                sessions, writes, now=utcnow(), threshold=settings.credit_breaker_failures
            )

    if slots.opened or writes:
        await asyncio.to_thread(after)
    return Gathered({**skipped, **results}, markets, fanout_seconds, priced)


def finish_credit_request(
    session: Session, prepared: Prepared, gathered: Gathered, *, settings: Settings
) -> CreditRequestView:
    """Phase 3: normalise the quotes the fan-out did not price on arrival, rank, persist the
    request, quotes, outcomes and the receipt."""
    now, ask, body, wallet = prepared.now, prepared.ask, prepared.body, prepared.wallet
    outcomes = {**prepared.outcomes, **gathered.results}
    normalised: dict[int, tuple[Plan, Normalised]] = {}
    for plan in prepared.plans:
        result = outcomes[plan.provider_id]
        if result.outcome is not Outcome.QUOTED or result.quote is None:
            continue
        early = gathered.priced.get(plan.provider_id)
        priced = (
            early.result
            if early is not None and early.quote is result.quote
            else price_quote(prepared, plan, result.quote, gathered.markets[plan.chain_id])
        )
        if isinstance(priced, PricingError):
            outcomes[plan.provider_id] = replace(
                result, outcome=Outcome.ERROR, reason=f"could not be priced: {priced.detail}"
            )
        else:
            normalised[plan.provider_id] = (plan, priced)

    constraints = BorrowerConstraints(
        max_apr=body.constraints.max_apr, preference=body.constraints.secured
    )
    ranking = rank_quotes([n.ranking for _, n in normalised.values()], constraints)
    rank_of = {q.quote_id: index + 1 for index, q in enumerate(ranking.ranked)}
    excluded = {e.quote.quote_id: e.reason for e in ranking.excluded}

    request_id = ask.request_id
    request = CreditRequest(
        id=request_id,
        wallet=wallet,
        asset=body.asset,
        chain_id=body.chain_id,
        amount=str(ask.amount),
        term_days=body.term_days,
        purpose=body.purpose,
        collateral=ask.collateral,
        constraints=body.constraints.model_dump(mode="json"),
        risk_score=prepared.risk.score,
        risk_reasons=list(prepared.risk.reasons),
        created_at=now,
    )
    quotes = [
        CreditQuote(
            id=n.ranking.quote_id,
            request_id=request_id,
            provider_id=plan.provider_id,
            source=plan.source,
            chain_id=plan.chain_id,
            rank=rank_of.get(n.ranking.quote_id),
            excluded_reason=excluded.get(n.ranking.quote_id),
            document=n.document,
            figures=n.figures,
            typed_data=n.typed_data,
            expires_at=prepared.expires_at,
            created_at=now,
        )
        for plan, n in normalised.values()
    ]
    rows = [
        ProviderOutcome(
            request_id=request_id,
            provider_id=pid,
            outcome=result.outcome.value,
            reason=result.reason,
            duration_ms=result.duration_ms,
            created_at=now,
        )
        for pid, result in sorted(outcomes.items())
    ]
    ranked = sorted((q for q in quotes if q.rank is not None), key=lambda q: q.rank or 0)
    # The receipt is made and signed first, with no lock held, so the request row can carry
    # its id; appending it to the log (the log-state lock, held until the commit) is the very
    # last step, after every other write and the response view.
    receipt = (
        _quote_set_receipt(request, ranked, prepared.debt_chains[ranked[0].chain_id], settings, now)
        if ranked
        else None
    )
    if receipt is not None:
        request.quote_set_receipt_id = str(receipt.id)
    CreditRepository(session).insert_request(request, quotes, rows)
    _log(request, prepared.risk, outcomes)
    view = request_view(request, quotes, rows)
    if receipt is not None:
        append_prepared(session, [receipt])
    return view


def _skipped_overloaded() -> SourceResult:
    return SourceResult(
        Outcome.TIMED_OUT,
        reason="skipped: overloaded (not asked: too many credit requests were in flight for "
        "this one to ask providers and still answer before the overall deadline; ask again "
        "shortly)",
    )


def _circuit_open() -> SourceResult:
    return SourceResult(
        Outcome.CIRCUIT_OPEN,
        reason="skipped: the provider failed repeatedly; its circuit breaker is open "
        "until a probe after the cool-down succeeds",
    )


def get_credit_request(session: Session, wallet: str, request_id: str) -> CreditRequestView:
    repo = WalletCreditRepository(session, wallet.lower())
    request = repo.request(request_id)
    if request is None:
        raise CreditRequestNotFound(
            f"No credit request {request_id!r} belongs to this wallet.",
            hint="Use the id returned by POST /v1/credit-requests, signed in as the same wallet.",
        )
    return request_view(request, repo.quotes(request_id), repo.outcomes(request_id))


# -- steps ------------------------------------------------------------------------------------


def _collateral(registry: AssetRegistry, body: CreditRequestIn) -> Collateral | None:
    if body.collateral is None:
        return None
    entry = registry.require(body.collateral.asset, body.collateral.chain_id, "collateral.asset")[0]
    if entry.liquidation_threshold is None:
        raise UnknownAsset(
            f"collateral.asset: {entry.symbol} on chain {entry.chain_id} is not accepted "
            "as collateral (it has no liquidation threshold).",
            hint="Offer an asset configured as collateral, or ask for unsecured credit.",
        )
    return Collateral(entry, int(body.collateral.amount))


def _plan(
    config: ProviderConfig,
    ask: Ask,
    debt_chains: dict[int, AssetEntry],
    collateral: Collateral | None,
    tier: int,
    cipher: FieldCipher,
    pools: PoolStateCache,
    now: datetime,
) -> Plan | str:
    """How to ask this provider, or why it is not eligible."""
    pid = config.provider.id
    if config.provider.kind == ProviderKind.DEFI.value:
        pool = config.pool
        if pool is None:
            return "no lending pool is registered for this DeFi provider"
        if pool.asset != ask.asset:
            return f"its pool lends {pool.asset}, not {ask.asset}"
        if pool.chain_id not in debt_chains:
            return f"its pool is on chain {pool.chain_id}, which the request excludes"
        if collateral is not None and collateral.entry.chain_id != pool.chain_id:
            return f"its pool is on chain {pool.chain_id}; the collateral is on another chain"
        reader_ask = _on_chain(ask, pool.chain_id)
        address = pool.pool_address

        async def run_pool(_client: LenderPoster) -> SourceResult:
            return await quote_pool(pools, reader_ask, pool=address)

        return Plan(pid, "defi", pool.chain_id, run_pool)

    card = RateCard.model_validate(config.rate_card.document) if config.rate_card else None
    if card is not None:
        reason = card_ineligibility(card, ask, kyc_tier=tier)
        if reason is not None:
            return reason
    if config.webhook is not None:
        secrets = signing_secrets(config.webhook, ProviderSealer(cipher, pid), now)
        url = config.webhook.url

        async def run_http(client: LenderPoster) -> SourceResult:
            return await quote_http(client, ask, url=url, secrets=secrets, provider_id=pid)

        return Plan(pid, "traditional", ask.chain_id, run_http, posts=True)
    if card is None:
        return "has neither a quote endpoint nor a rate card"
    rate_card, payout = card, config.payout_address

    async def run_card(_client: LenderPoster) -> SourceResult:
        return quote_card(rate_card, ask, payout_address=payout)

    return Plan(pid, "traditional", ask.chain_id, run_card)


def _on_chain(ask: Ask, chain_id: int) -> Ask:
    return replace(ask, chain_id=chain_id)


async def _gather(
    plans: list[Plan],
    chains: list[int],
    reader: ChainReader,
    prepared: Prepared,
    client: LenderPoster,
    settings: Settings,
    *,
    deadline: float,
    pools: PoolStateCache | None,
) -> tuple[dict[int, SourceResult], dict[int, Market], dict[int, PricedQuote]]:
    market_reads: dict[int, asyncio.Future[Market]] = {
        cid: asyncio.ensure_future(
            _market_or_fallback(reader, pools, prepared, cid, deadline=max(deadline, 0.001))
        )
        for cid in chains
    }
    pricer = ArrivalPricer(prepared, plans, market_reads)
    calls = [Call(plan.provider_id, _bind(plan.run, client)) for plan in plans]
    try:
        results = await fan_out(
            calls,
            provider_timeout=settings.credit_provider_timeout,
            deadline=deadline,
            on_result=pricer,
        )
        by_chain = dict(zip(chains, await asyncio.gather(*market_reads.values()), strict=True))
    finally:
        for read in market_reads.values():
            read.cancel()  # a no-op once done; stops the reads of a cancelled request
    return results, by_chain, pricer.priced


def _bind(run: Source, client: LenderPoster) -> Callable[[], Awaitable[SourceResult]]:
    def bound() -> Awaitable[SourceResult]:
        return run(client)

    return bound


async def _market_or_fallback(
    reader: ChainReader,
    pools: PoolStateCache | None,
    prepared: Prepared,
    chain_id: int,
    *,
    deadline: float,
) -> Market:
    """The chain's market, or, when it cannot be read in time, one with no prices, gas or
    nonce (quotes still price, without gas or collateral figures). Never raises, so the early
    pricing and phase 3 see the same market."""
    try:
        return await asyncio.wait_for(
            _read_market(
                reader,
                pools,
                prepared.registry,
                chain_id,
                prepared.body,
                prepared.collateral,
                prepared.wallet,
            ),
            deadline,
        )
    except Exception as exc:
        logger.warning(
            "market read failed: %r", exc, extra={"chain_id": chain_id, "error": repr(exc)}
        )
        return Market(Prices(), 0, reader.aggregator(chain_id), 0)


async def _read_market(
    reader: ChainReader,
    pools: PoolStateCache | None,
    registry: AssetRegistry,
    chain_id: int,
    body: CreditRequestIn,
    collateral: Collateral | None,
    wallet: str,
) -> Market:
    """Prices and gas price once per block for all requests (through `pools`, the process's
    per-block cache; straight reads without one), then the borrower's own nonce."""

    async def per_block(name: tuple[str, ...], read: Callable[[int | None], T]) -> T:
        if pools is None:
            return await asyncio.to_thread(read, None)
        return await pools.per_block(chain_id, name, read)

    async def price(feed: str | None) -> Decimal | None:
        if feed is None:
            return None
        try:
            raw = await per_block(
                ("feed", feed.lower()), lambda block: reader.feed_price(chain_id, feed, block=block)
            )
            return price_from_feed(*raw)
        except (ChainError, PricingError):
            return None

    debt = registry.get(body.asset, chain_id)
    native_feed = registry.native_price_feeds.get(chain_id)
    prices = Prices(
        debt=await price(debt.price_feed if debt else None),
        collateral=await price(collateral.entry.price_feed if collateral else None),
        native=await price(native_feed),
    )
    gas = await per_block(("gas",), lambda block: reader.gas_price(chain_id, block=block))
    aggregator, nonce = await asyncio.to_thread(
        lambda: (reader.aggregator(chain_id), reader.nonce(chain_id, wallet))
    )
    return Market(
        prices=prices,
        gas_wei=gas * reader.settings.credit_open_loan_gas,
        aggregator=aggregator,
        nonce=nonce,
    )


def _quote_set_receipt(
    request: CreditRequest,
    ranked: list[CreditQuote],
    debt: AssetEntry,
    settings: Settings,
    now: datetime,
) -> PreparedReceipt:
    payload = {
        "credit_request_id": request.id,
        "borrower": request.wallet,
        "requested_asset": asset_ref(debt),
        "requested_amount": request.amount,
        "quotes": [q.document for q in ranked],
        "ranking": [q.id for q in ranked],
        "ranking_rule": RANKING_RULE,
        "quoted_at": format_issued_at(now),
    }
    [prepared] = prepare_receipts(
        [
            ReceiptDraft(
                kind=ReceiptKind.QUOTE_SET,
                tenant=f"wallet:{request.wallet}",
                subject=f"credit-request:{request.id}",
                payload=payload,
            )
        ],
        signer=signer_from_settings(settings),
    )
    return prepared


def _log(request: CreditRequest, risk: RiskProfile, outcomes: dict[int, SourceResult]) -> None:
    counts: dict[str, int] = {}
    for result in outcomes.values():
        counts[result.outcome.value] = counts.get(result.outcome.value, 0) + 1
    logger.info(
        "credit request quoted",
        extra={"credit_request_id": request.id, "risk_score": risk.score, "outcomes": counts},
    )
