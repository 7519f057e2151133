"""Statements: the line laws (hypothesis), and a month billed from real final LoanOpened events."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from backend.billing.plans import PLANS
from backend.billing.service import generate_statement, subscribe
from backend.billing.statements import Usage, build_lines, month_bounds, total_of
from backend.billing.tasks import month_start, run
from backend.db import SessionFactory
from backend.receipts.kinds import validate_payload
from backend.receipts.models import Receipt
from backend.receipts.signing import ReceiptSigner
from backend.watcher.backfill import backfill
from chain_adapters.devnet import Devnet
from tests.risk.conftest import Lending, create_lender

usages = st.builds(
    Usage,
    quotes=st.integers(0, 10**7),
    loans=st.integers(0, 10**6),
    volume=st.integers(0, 10**30),
    other_asset_loans=st.integers(0, 10**3),
)
plans = st.sampled_from(sorted(PLANS))


@given(plans, usages)
def test_lines_are_valid_billing_statement_lines(code: str, usage: Usage) -> None:
    lines = build_lines(PLANS[code], usage)
    payload = {
        "statement_id": "stmt-1-2026-11",
        "provider": "provider:1",
        "period_start": "2026-11-01T00:00:00Z",
        "period_end": "2026-12-01T00:00:00Z",
        "currency_asset": {
            "chain_id": 31337,
            "address": "0x" + "ab" * 20,
            "symbol": "USDC",
            "decimals": 6,
        },
        "lines": lines,
        "total": str(total_of(lines)),
    }
    validate_payload("billing_statement", 1, payload)


@given(plans, usages, st.integers(1, 10**4), st.integers(1, 10**20))
def test_more_usage_never_costs_less(code: str, usage: Usage, quotes: int, volume: int) -> None:
    base = total_of(build_lines(PLANS[code], usage))
    more = Usage(usage.quotes + quotes, usage.loans + 1, usage.volume + volume)
    assert total_of(build_lines(PLANS[code], more)) >= base


def test_month_of_real_final_loans_becomes_final_once_with_one_receipt(
    factory: SessionFactory, lending: Lending, chains: list[Devnet]
) -> None:
    usdc = lending.market.address(lending.chain_id, "USDC").lower()
    with factory() as session, session.begin():
        provider_id = create_lender(session, name="lender-b", payout_address=lending.provider)
        subscribe(
            session,
            provider_id,
            plan_code="pay_as_you_go",
            currency_chain_id=lending.chain_id,
            currency_address=usdc,
            currency_symbol="USDC",
            currency_decimals=6,
        )
    watcher = lending.watcher(chains[0], confirmations=3)
    lending.open_loan(1_000 * 10**6, 0)
    lending.open_loan(250 * 10**6, 0)
    opened_at = lending.w3.eth.get_block("latest")["timestamp"]
    start, end = month_bounds(
        datetime.fromtimestamp(opened_at, UTC).replace(day=1, hour=0, minute=0, second=0)
    )
    signer = ReceiptSigner(bytes(range(32)))

    def block_time(chain_id: int, number: int) -> int:
        assert chain_id == watcher.chain_id
        return int(watcher.adapter.block(number).timestamp)

    def generate() -> tuple[str, list[dict[str, object]], str, str | None]:
        with factory() as session, session.begin():
            s = generate_statement(
                session, provider_id, start, block_time=block_time, signer=signer, now=end
            )
            return s.status, list(s.lines), s.total, s.receipt_id

    backfill(factory, watcher, from_block=0, until_head=True)
    status, lines, total, _ = generate()
    assert status == "open" and lines[2]["quantity"] == 0  # LoanOpened not final yet

    lending.mine(3)
    backfill(factory, watcher, from_block=0, until_head=True)
    status, lines, total, receipt = generate()
    assert (status, lines[2]["quantity"], total, receipt) == ("open", 2, str(1_250 * 10**3), None)

    lending.rpc("evm_setNextBlockTimestamp", [int(end.timestamp())])
    lending.mine(4)
    backfill(factory, watcher, from_block=0, until_head=True)
    final = generate()
    assert final[0] == "final" and final[2] == str(1_250 * 10**3) and final[3] is not None
    assert generate() == final  # idempotent: never recomputed, never receipted twice
    with factory() as session:
        receipts = session.scalars(select(Receipt).where(Receipt.kind == "billing_statement")).all()
        assert len(receipts) == 1 and str(receipts[0].id) == final[3]
        assert receipts[0].payload["total"] == final[2]
        count = session.scalar(select(func.count()).select_from(Receipt))
        assert count == 1


@given(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2200, 1, 1)))
def test_month_start_is_a_valid_period_start_at_or_before_now(moment: datetime) -> None:
    aware = moment.replace(tzinfo=UTC)
    start = month_start(aware)
    assert month_bounds(start)[0] == start <= aware < month_bounds(start)[1]
    previous = month_start(aware, months_back=1)
    assert month_bounds(previous)[1] == start


def test_the_monthly_task_body_generates_every_subscribed_statement(
    factory: SessionFactory,
) -> None:
    with factory() as session, session.begin():
        provider_id = create_lender(session, name="lender-c", payout_address="0x" + "cd" * 20)
        subscribe(
            session,
            provider_id,
            plan_code="growth",
            currency_chain_id=31337,
            currency_address="0x" + "ab" * 20,
            currency_symbol="USDC",
            currency_decimals=6,
        )
    now = datetime(2026, 11, 15, tzinfo=UTC)
    report = run(factory, block_time=_no_blocks, signer=ReceiptSigner(bytes(32)), now=now)
    # No chain is watched, so nothing can still change October: it is final; November is not.
    assert report == {f"{provider_id}:2026-10": "final", f"{provider_id}:2026-11": "open"}
    assert run(factory, block_time=_no_blocks, signer=ReceiptSigner(bytes(32)), now=now) == report
    with factory() as session:
        [receipt] = session.scalars(select(Receipt)).all()
        assert receipt.payload["total"] == str(500 * 10**6)  # the growth plan's monthly fee


def _no_blocks(chain_id: int, number: int) -> int:
    raise AssertionError(f"no chain is watched, yet block {number} of {chain_id} was asked")
