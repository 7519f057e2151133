"""Monthly statements: usage (final on-chain originations + quotes served) priced by the plan.

A statement is `open` while any of its events may still change: before its month ends, or while
some watched chain has not finalised past the month's end (its final-phase billing effects are
then incomplete). Once every chain's final block is at or after the month's end, the statement
is computed one last time, marked `final`, and a `billing_statement` receipt is issued in the
same transaction; a final statement is never recomputed, which makes generation idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from backend.billing.exceptions import NoSubscription
from backend.billing.models import BillingStatement, BillingSubscription
from backend.billing.plans import plan
from backend.billing.repository import BillingRepository
from backend.billing.statements import Usage, build_lines, format_time, month_bounds, total_of
from backend.kit.columns import utcnow
from backend.providers.service import payout_address
from backend.receipts.models import ReceiptKind
from backend.receipts.service import ReceiptDraft, issue_receipt
from backend.receipts.signing import ReceiptSigner

#: (chain_id, block number) -> block timestamp, e.g. `lambda c, n: adapters[c].block(n).timestamp`.
BlockTimeSource = Callable[[int, int], int]


def subscribe(
    session: Session,
    provider_id: int,
    *,
    plan_code: str,
    currency_chain_id: int,
    currency_address: str,
    currency_symbol: str,
    currency_decimals: int,
) -> BillingSubscription:
    """Put `provider_id` on `plan_code`, billed in the given token (idempotent upsert)."""
    plan(plan_code)  # refuses unknown codes with the list of known ones
    return BillingRepository(session).put_subscription(
        BillingSubscription(
            provider_id=provider_id,
            plan=plan_code,
            currency_chain_id=currency_chain_id,
            currency_address=currency_address.lower(),
            currency_symbol=currency_symbol,
            currency_decimals=currency_decimals,
        )
    )


class _Clock:
    """Block times, cached in `billing_block_times` (only final blocks are ever asked)."""

    def __init__(self, repo: BillingRepository, source: BlockTimeSource) -> None:
        self.repo, self.source = repo, source

    def __call__(self, chain_id: int, number: int) -> int:
        known = self.repo.block_time(chain_id, number)
        if known is None:
            known = int(self.source(chain_id, number))
            self.repo.add_block_time(chain_id, number, known)
        return known


def generate_statement(
    session: Session,
    provider_id: int,
    period_start: datetime,
    *,
    block_time: BlockTimeSource,
    signer: ReceiptSigner,
    now: datetime | None = None,
) -> BillingStatement:
    """Create or refresh the provider's statement of the month; finalise it when it can be."""
    start, end = month_bounds(period_start)
    repo = BillingRepository(session)
    subscription = repo.subscription(provider_id)
    if subscription is None:
        raise NoSubscription(
            f"provider {provider_id} has no billing subscription",
            hint="subscribe it to a plan first (backend.billing.service.subscribe)",
        )
    statement = repo.statement(provider_id, start)
    if statement is not None and statement.status == "final":
        return statement
    clock = _Clock(repo, block_time)
    usage = _usage(repo, clock, provider_id, subscription, start, end)
    lines = build_lines(plan(subscription.plan), usage)
    moment = now or utcnow()
    final = moment >= end and all(
        number >= 0 and clock(chain_id, number) >= int(end.timestamp())
        for chain_id, number in repo.final_blocks()
    )
    if statement is None:
        statement = repo.add_statement(
            BillingStatement(
                provider_id=provider_id,
                period_start=start,
                period_end=end,
                status="open",
                plan=subscription.plan,
                lines=lines,
                total=str(total_of(lines)),
                computed_at=moment,
            )
        )
    statement.plan, statement.lines, statement.total = (
        subscription.plan,
        lines,
        str(total_of(lines)),
    )
    statement.computed_at = moment
    if final:
        statement.status = "final"
        receipt = issue_receipt(
            session,
            ReceiptDraft(
                kind=ReceiptKind.BILLING_STATEMENT,
                tenant=f"provider:{provider_id}",
                subject=statement_id(provider_id, start),
                payload=statement_payload(statement, subscription),
            ),
            signer=signer,
        )
        statement.receipt_id = str(receipt.id)
    session.flush()
    return statement


def generate_statements(
    session: Session,
    period_start: datetime,
    *,
    block_time: BlockTimeSource,
    signer: ReceiptSigner,
    now: datetime | None = None,
) -> list[BillingStatement]:
    """Every subscribed provider's statement of the month (what the monthly beat task runs)."""
    return [
        generate_statement(
            session, sub.provider_id, period_start, block_time=block_time, signer=signer, now=now
        )
        for sub in BillingRepository(session).subscriptions()
    ]


def _usage(
    repo: BillingRepository,
    clock: _Clock,
    provider_id: int,
    subscription: BillingSubscription,
    start: datetime,
    end: datetime,
) -> Usage:
    address = payout_address(repo.session, provider_id)
    loans = volume = other = 0
    lo, hi = int(start.timestamp()), int(end.timestamp())
    for row in repo.originations(address) if address else []:
        if not lo <= clock(row.chain_id, row.block_number) < hi:
            continue
        loans += 1
        same_currency = (
            row.chain_id == subscription.currency_chain_id
            and row.asset == subscription.currency_address
        )
        if same_currency:
            volume += int(row.principal)
        else:
            other += 1
    return Usage(
        quotes=repo.quotes_served(provider_id, start, end),
        loans=loans,
        volume=volume,
        other_asset_loans=other,
    )


def statement_id(provider_id: int, start: datetime) -> str:
    return f"stmt-{provider_id}-{start.astimezone(UTC):%Y-%m}"


def statement_payload(
    statement: BillingStatement, subscription: BillingSubscription
) -> dict[str, object]:
    """The `BillingStatementV1` payload of a statement."""
    return {
        "statement_id": statement_id(statement.provider_id, statement.period_start),
        "provider": f"provider:{statement.provider_id}",
        "period_start": format_time(statement.period_start),
        "period_end": format_time(statement.period_end),
        "currency_asset": {
            "chain_id": subscription.currency_chain_id,
            "address": subscription.currency_address,
            "symbol": subscription.currency_symbol,
            "decimals": subscription.currency_decimals,
        },
        "lines": list(statement.lines),
        "total": statement.total,
    }
