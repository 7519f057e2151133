"""Traditional lenders: a signed HTTP quote request answered inline, or the lender's rate card.

Wire protocol (documented for lenders; `scripts/example_lender.py` implements it):

    POST <webhook url>
    Credagg-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the whsec_ secret>
    {"type": "credit_request.quote_requested", "id": "<event id>", "created_at": "...",
     "data": {"request_id", "asset", "amount", "term_days", "chain_id", "collateral",
              "risk_score", "risk_reasons", "respond_by"}}

The lender answers within its timeout, with 200 and either
    {"decision": "quote", "apr": "0.1150", "origination_fee": "2500", "address": "0x..."}
or  {"decision": "decline", "reason": "..."}
(`apr` a yearly fraction string, `origination_fee` smallest units of the asset, `address` the
lender's on-chain address that goes into the EIP-712 terms). Anything else (non-2xx, malformed
JSON) is an `error` and counts against the lender's circuit breaker; a decline does not.

Or the lender answers 202 Accepted and posts its answer later, before `respond_by`, to
`POST /v1/provider/quotes` with `{"credit_request_id", "quote": {apr, origination_fee,
address}}` or `{"credit_request_id", "decline": {"reason"}}` (see backend/credit/late_answers.py);
it is validated and priced exactly like an inline answer.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backend.credit import late_answers
from backend.credit.lender_http import LenderPoster
from backend.credit.models import Outcome
from backend.credit.sources import Ask, RawQuote, SourceResult
from backend.providers.rate_cards import MAX_APR, RateCard
from backend.providers.webhooks.signing import SIGNATURE_HEADER, signature_header

EVENT_TYPE = "credit_request.quote_requested"
#: The `provider` of a rate-card quote whose lender set no payout address in its profile:
#: CreditAggregator refuses to open such a loan (ZeroAddress), so acceptance names the fix.
NO_ADDRESS = "0x" + "00" * 20


class QuoteAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    decision: Literal["quote", "decline"]
    apr: Decimal | None = Field(default=None, ge=0, le=MAX_APR)
    origination_fee: int = Field(default=0, ge=0)
    address: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{40}$")
    reason: str | None = Field(default=None, max_length=500)


def request_body(ask: Ask) -> bytes:
    envelope = {
        "type": EVENT_TYPE,
        "id": f"evt_{uuid.uuid4().hex}",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "data": {
            "request_id": ask.request_id,
            "asset": ask.asset,
            "amount": str(ask.amount),
            "term_days": ask.term_days,
            "chain_id": ask.chain_id,
            "collateral": ask.collateral,
            "risk_score": ask.score,
            "risk_reasons": list(ask.reasons),
            "respond_by": ask.respond_by,
        },
    }
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()


async def quote_http(
    client: LenderPoster,
    ask: Ask,
    *,
    url: str,
    secrets: list[str],
    provider_id: int | None = None,
) -> SourceResult:
    """POST the signed request; the caller's timeout bounds the whole exchange, including the
    wait for an answer posted later (a 202), which needs `provider_id` and the fan-out's
    session factory (`late_answers.SESSIONS`)."""
    batch = late_answers.BATCH.get()
    if batch is not None and provider_id is not None and batch.request_id == ask.request_id:
        # The fan-out opened this slot with all the others and closes them all when it ends.
        return await _exchange(
            client, ask, url=url, secrets=secrets, slot=batch.slot(provider_id), batch=batch
        )
    sessions = late_answers.SESSIONS.get()
    slot = None
    if provider_id is not None and sessions is not None:
        slot = late_answers.Slot(sessions, ask.request_id, provider_id)
        if not await slot.open(datetime.fromisoformat(ask.respond_by)):
            slot = None  # asked twice for the same request: only the first may answer later
    try:
        result = await _exchange(client, ask, url=url, secrets=secrets, slot=slot)
    except BaseException:
        if slot is not None:  # cancelled (timeout, deadline): refuse answers from now on
            await asyncio.shield(slot.close())
        raise
    return result


async def _exchange(
    client: LenderPoster,
    ask: Ask,
    *,
    url: str,
    secrets: list[str],
    slot: late_answers.Slot | None,
    batch: late_answers.SlotBatch | None = None,
) -> SourceResult:
    body = request_body(ask)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature_header(secrets, body, timestamp=int(time.time())),
    }
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        return SourceResult(Outcome.TIMED_OUT, reason="no answer before the timeout")
    except httpx.HTTPError as exc:
        return SourceResult(
            Outcome.ERROR, reason=f"request failed: {type(exc).__name__}", counts_as_failure=True
        )
    if response.status_code == 202 and slot is not None:
        return await _await_posted(ask, slot)
    answered = response.status_code // 100 == 2 and response.status_code != 202
    if slot is not None and batch is not None:  # the batch closes it when the fan-out ends
        if answered:
            batch.answered_inline(slot.provider_id)
    elif slot is not None:  # answered inline (or failed): a later POST is refused
        await slot.close(late_answers.INLINE if answered else late_answers.CLOSED)
    if not answered:
        return SourceResult(
            Outcome.ERROR, reason=f"answered HTTP {response.status_code}", counts_as_failure=True
        )
    try:
        answer = QuoteAnswer.model_validate_json(response.content)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        return SourceResult(
            Outcome.ERROR,
            reason=f"malformed answer at {where}: {first['msg']}",
            counts_as_failure=True,
        )
    return interpret(answer, ask)


async def _await_posted(ask: Ask, slot: late_answers.Slot) -> SourceResult:
    """Wait for the answer the lender posts, until the request's overall deadline."""
    left = (datetime.fromisoformat(ask.respond_by) - datetime.now().astimezone()).total_seconds()
    try:
        kind, body = await asyncio.wait_for(slot.wait(), max(left, 0.0))
    except TimeoutError:
        found = await slot.settle()
        if found is None:
            return SourceResult(
                Outcome.TIMED_OUT, reason="accepted the request (202) but posted no answer in time"
            )
        kind, body = found
    else:
        await slot.close()
    return interpret(QuoteAnswer.model_validate({"decision": kind, **body}), ask)


def interpret(answer: QuoteAnswer, ask: Ask) -> SourceResult:
    """What a well-formed answer means for `ask`, inline or posted later alike."""
    if answer.decision == "decline":
        return SourceResult(Outcome.DECLINED, reason=answer.reason or "declined by the lender")
    if answer.apr is None or answer.address is None:
        return SourceResult(
            Outcome.ERROR, reason="a quote needs apr and address", counts_as_failure=True
        )
    if answer.origination_fee >= ask.amount:
        return SourceResult(Outcome.ERROR, reason="origination_fee is not below the amount")
    return SourceResult(
        Outcome.QUOTED,
        RawQuote(answer.apr, answer.origination_fee, answer.address.lower()),
    )


def card_fee(card: RateCard, asset: str, amount: int) -> int:
    """The card's origination fee: bps of the principal (rounded down) plus the fixed part."""
    return amount * card.origination_fee.bps // 10_000 + card.origination_fee.fixed.get(asset, 0)


def card_ineligibility(card: RateCard, ask: Ask, *, kyc_tier: int) -> str | None:
    """Why the card does not lend for `ask` (None: it does)."""
    if card.required_kyc_tier > kyc_tier:
        return f"requires KYC tier {card.required_kyc_tier}; the wallet has tier {kyc_tier}"
    rule = card.amount_range(ask.asset)
    if rule is None:
        return f"does not lend {ask.asset}"
    if not rule.min_amount <= ask.amount <= rule.max_amount:
        return f"lends {ask.asset} from {rule.min_amount} to {rule.max_amount} units"
    if ask.term_days not in card.terms_days:
        return f"offers terms of {card.terms_days} days, not {ask.term_days}"
    if card.apr_for_score(ask.score) is None:
        return f"does not lend at risk score {ask.score}"
    if ask.collateral is not None and card.max_ltv(str(ask.collateral["asset"])) is None:
        return f"does not take {ask.collateral['asset']} as collateral"
    if card_fee(card, ask.asset, ask.amount) >= ask.amount:
        return "its origination fee would exceed the amount"
    return None


def quote_card(card: RateCard, ask: Ask, *, payout_address: str | None = None) -> SourceResult:
    """Price `ask` from the card; the lender's payout address (its profile) is the `provider`
    of the EIP-712 terms, so the loan opened on-chain names the lender that is paid."""
    apr = card.apr_for_score(ask.score)
    assert apr is not None  # checked by card_ineligibility
    address = payout_address.lower() if payout_address else NO_ADDRESS
    return SourceResult(
        Outcome.QUOTED, RawQuote(apr, card_fee(card, ask.asset, ask.amount), address)
    )
