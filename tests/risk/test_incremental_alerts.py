"""Alerts raised step by step from only the touched loans' state equal a whole-chain replay.

No devnet: random loan, collateral, price and config logs are stored as `watcher_logs` rows and
fed through the real `RiskProjection` in random batches on the real database (SQLite, or
PostgreSQL with DATABASE_URL); the oracle is the replay of every effect the projection used
before it became incremental (`full_replay_alerts`, kept here verbatim in meaning).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert
from sqlalchemy.orm import Session

from backend.db import SessionFactory
from backend.risk.alerts import alert_effects
from backend.risk.projections import DEFAULT_THRESHOLDS, RiskProjection
from backend.risk.repository import RiskRepository
from backend.risk.state import Effect, RiskState
from backend.watcher.models import WatcherLog
from backend.watcher.projections import DecodedLog

ASSETS = tuple(f"0x{n:040x}" for n in (0xA1, 0xA2, 0xA3))
FEEDS = tuple(f"0x{n:040x}" for n in (0xF1, 0xF2))
PEOPLE = f"0x{0xB0:040x}", f"0x{0xC0:040x}"
_chains = itertools.count(90_000)

#: An alert as a comparable tuple: (block_hash, log_index, loan_id, threshold, borrower,
#: provider, health_factor, price).
Alert = tuple[str, int, str, str, str, str, str, str | None]


@dataclass(frozen=True)
class Event:
    name: str
    args: dict[str, Any]
    address: str = ASSETS[0]


def _amount(low: int = 0) -> st.SearchStrategy[int]:
    return st.integers(low, 40)


_loan = st.integers(0, 3)  # 0 and unopened ids exercise "a loan from before the start block"


def configs(assets: Sequence[str] = ASSETS) -> st.SearchStrategy[Event]:
    return st.builds(
        lambda asset, feed, bps, token, decimals: Event(
            "AssetConfigured",
            {
                "asset": asset,
                "feed": feed,
                "liquidationThresholdBps": bps,
                "liquidationBonusBps": 500,
                "tokenDecimals": token,
                "feedDecimals": decimals,
            },
        ),
        st.sampled_from(assets),
        st.sampled_from(FEEDS),
        st.sampled_from((5_000, 8_000, 10_000)),
        st.sampled_from((0, 0, 0, 1)),
        st.sampled_from((0, 0, 0, 1)),
    )


def prices(feeds: Sequence[str] = FEEDS, low: int = -1) -> st.SearchStrategy[Event]:
    return st.builds(
        lambda feed, answer: Event(
            "AnswerUpdated", {"roundId": 1, "answer": answer, "updatedAt": 0}, feed
        ),
        st.sampled_from(feeds),
        st.integers(low, 30),
    )


def _deposit(loan: int, amount: int) -> Event:
    return Event("Deposited", {"loanId": loan, "amount": amount, "balance": 0})


def _opened(loan: int, asset: str, collateral: str, principal: int, pledged: int) -> list[Event]:
    """A loan opened and (mostly) collateralised right away, as the contracts do it."""
    args = {
        "loanId": loan,
        "borrower": PEOPLE[0],
        "provider": PEOPLE[1],
        "asset": asset,
        "collateralAsset": collateral,
        "principal": principal,
    }
    return [Event("LoanOpened", args)] + ([_deposit(loan, pledged)] if pledged else [])


def _one(event: st.SearchStrategy[Event]) -> st.SearchStrategy[list[Event]]:
    return event.map(lambda e: [e])


#: Runs of events; price moves and deposits weigh more than the events that end a loan.
STEPS: st.SearchStrategy[list[Event]] = st.one_of(
    _one(configs()),
    _one(prices()),
    _one(prices()),
    _one(prices()),
    st.builds(
        _opened,
        st.integers(1, 3),
        st.sampled_from(ASSETS),
        st.sampled_from(ASSETS),
        _amount(1),
        _amount(),
    ),
    st.builds(
        _opened,
        st.integers(1, 3),
        st.sampled_from(ASSETS),
        st.sampled_from(ASSETS),
        _amount(1),
        _amount(),
    ),
    _one(st.builds(_deposit, _loan, _amount(1))),
    _one(
        st.builds(
            lambda loan, amount: Event(
                "Withdrawn", {"loanId": loan, "amount": amount, "balance": 0}
            ),
            _loan,
            _amount(1),
        )
    ),
    _one(
        st.builds(
            lambda loan, amount, after: Event(
                "RepaymentRecorded", {"loanId": loan, "amount": amount, "outstandingAfter": after}
            ),
            _loan,
            _amount(1),
            _amount(),
        )
    ),
    _one(
        st.builds(
            lambda loan, seized, repaid: Event(
                "Liquidated", {"loanId": loan, "seized": seized, "repayAmount": repaid}
            ),
            _loan,
            _amount(1),
            _amount(),
        )
    ),
    _one(
        st.builds(
            lambda loan, left: Event("LoanDefaulted", {"loanId": loan, "outstanding": left}),
            _loan,
            _amount(),
        )
    ),
    _one(
        st.builds(
            lambda loan, off: Event(
                "LoanClosed", {"loanId": loan, "totalRepaid": 1, "writtenOff": off}
            ),
            _loan,
            st.sampled_from((0, 3)),
        )
    ),
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Event], list[bool], list[int]]:
    """Events, whether each starts a new block, and the sizes of the batches they arrive in."""
    # Mostly start from every asset configured and every feed priced (in random order), so
    # that loans have a health factor to cross with; sometimes from nothing.
    setup: list[Event] = []
    if draw(st.integers(0, 4)):
        setup = [draw(configs([asset])) for asset in ASSETS]
        setup += [draw(prices([feed], low=1)) for feed in FEEDS]
    steps = draw(st.lists(STEPS, min_size=1, max_size=40))
    events = draw(st.permutations(setup)) + [event for step in steps for event in step]
    new_block = draw(st.lists(st.booleans(), min_size=len(events), max_size=len(events)))
    sizes: list[int] = []
    while sum(sizes) < len(events):
        sizes.append(draw(st.integers(1, max(1, len(events) - sum(sizes)))))
    return events, new_block, sizes


def decoded_logs(
    chain_id: int, events: Sequence[Event], new_block: Sequence[bool]
) -> list[DecodedLog]:
    logs, block, index = [], 1, 0
    for event, fresh_block in zip(events, new_block, strict=True):
        if fresh_block:
            block, index = block + 1, 0
        logs.append(
            DecodedLog(
                chain_id=chain_id,
                block_hash=f"0x{block:064x}",
                log_index=index,
                block_number=block,
                transaction_hash=f"0x{block * 1_000 + index:064x}",
                address=event.address,
                event=event.name,
                args=event.args,
            )
        )
        index += 1
    return logs


def ingest(session: Session, projection: RiskProjection, batch: Sequence[DecodedLog]) -> None:
    """Store the batch's raw logs (what the effect rows reference), then project them."""
    session.execute(
        insert(WatcherLog),
        [
            {
                "chain_id": log.chain_id,
                "block_hash": log.block_hash,
                "log_index": log.log_index,
                "block_number": log.block_number,
                "transaction_hash": log.transaction_hash,
                "address": log.address,
                "data": b"",
            }
            for log in batch
        ],
    )
    projection.apply_many(session, batch)


def stored_alerts(session: Session, chain_id: int) -> list[Alert]:
    return sorted(
        (
            a.block_hash,
            a.log_index,
            a.loan_id,
            a.threshold,
            a.borrower,
            a.provider,
            a.health_factor,
            a.price,
        )
        for a in RiskRepository(session).alerts(chain_id)
    )


def full_replay_alerts(effects: Sequence[Effect], thresholds: Sequence[Decimal]) -> list[Alert]:
    """The reference: fold every effect of the chain, comparing each loan an effect touches
    before and after it (what `_raise_alerts` did on every step before it became incremental)."""
    state = RiskState()
    alerts: list[Alert] = []
    for effect in sorted(effects, key=lambda e: e.position):
        touched = state.loans_priced_by(effect.feed) if effect.table != "loan" else []
        before = {i: state.health_factor(i) for i in touched or [effect.loan_id]}
        for loan_id in state.apply(effect):
            after = state.health_factor(loan_id)
            was = before.get(loan_id)
            for threshold in thresholds:
                if after is not None and after < threshold and (was is None or was >= threshold):
                    loan = state.loans[loan_id]
                    price = state.price(loan.collateral_asset)
                    alerts.append(
                        (
                            effect.block_hash,
                            effect.position[1],
                            str(loan_id),
                            str(threshold),
                            loan.borrower,
                            loan.provider,
                            str(after),
                            None if price is None else format(price.normalize(), "f"),
                        )
                    )
    return sorted(alerts)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories())
def test_incremental_alerts_equal_a_full_replay_in_any_batching(
    factory: SessionFactory, history: tuple[list[Event], list[bool], list[int]]
) -> None:
    events, new_block, sizes = history
    chain_id = next(_chains)  # one chain per example: examples share the test's database
    logs = decoded_logs(chain_id, events, new_block)
    projection = RiskProjection()
    with factory() as session, session.begin():
        start = 0
        for size in sizes:
            ingest(session, projection, logs[start : start + size])
            start += size
        everything = RiskRepository(session).effects(chain_id)
        assert len(everything) == len(logs)
        assert stored_alerts(session, chain_id) == full_replay_alerts(
            everything, projection.thresholds
        )


def _config(asset: str, feed: str) -> Event:
    args = {
        "asset": asset,
        "feed": feed,
        "liquidationThresholdBps": 8_000,
        "liquidationBonusBps": 500,
        "tokenDecimals": 0,
        "feedDecimals": 0,
    }
    return Event("AssetConfigured", args)


def _open(loan: int, collateral: str) -> list[Event]:
    opened = {
        "loanId": loan,
        "borrower": PEOPLE[0],
        "provider": PEOPLE[1],
        "asset": ASSETS[0],
        "collateralAsset": collateral,
        "principal": 10,
    }
    return [
        Event("LoanOpened", opened),
        Event("Deposited", {"loanId": loan, "amount": 1, "balance": 1}),
    ]


def _price(feed: str, answer: int) -> Event:
    return Event("AnswerUpdated", {"roundId": 1, "answer": answer, "updatedAt": 0}, feed)


def test_a_late_price_drop_alerts_from_old_state_and_loads_only_touched_loans(
    factory: SessionFactory,
) -> None:
    """Loan 1 (collateral priced by feed 1) among 40 loans priced by feed 2, with long
    histories: a drop of feed 1 raises loan 1's alerts and loads none of the 40 loans."""
    chain_id = next(_chains)
    debt, one, two = ASSETS
    debt_feed = f"0x{0xF3:040x}"
    events = [_config(debt, debt_feed), _config(one, FEEDS[0]), _config(two, FEEDS[1])]
    events += [_price(debt_feed, 1), _price(FEEDS[1], 20)]
    events += _open(1, one)
    for loan in range(2, 42):
        events += [*_open(loan, two), _price(FEEDS[1], 20 + loan % 3)]
    events += [_price(FEEDS[0], 20)]  # loan 1: 1 x 20 x 0.8 / (10 x 1) = 1.6
    logs = decoded_logs(chain_id, events, [True] * len(events))
    drop = decoded_logs(chain_id, [*events, _price(FEEDS[0], 14)], [True] * (len(events) + 1))[-1]
    projection = RiskProjection()
    with factory() as session, session.begin():
        ingest(session, projection, logs)
        assert stored_alerts(session, chain_id) == []
        position = (drop.block_number, drop.log_index)
        ingest(session, projection, [drop])
        used = alert_effects(
            RiskRepository(session),
            chain_id,
            {(drop.block_hash, drop.log_index)},
            position,
            position,
        )
        # Loan 1's open + deposit, the configs of debt and `one`, their feeds' last prices, the
        # drop: nothing of the 40 other loans or of feed 2.
        tables = sorted(e.table for e in used)
        assert tables == ["config"] * 2 + ["loan"] * 2 + ["price"] * 3
        assert {e.loan_id for e in used if e.table == "loan"} == {1}
        # 1 x 14 x 0.8 / 10 = 1.12: below 1.5 and 1.2 in one update.
        assert [(a[2], a[3], a[6], a[7]) for a in stored_alerts(session, chain_id)] == sorted(
            [("1", "1.5", "1.120000000000000000", "14"), ("1", "1.2", "1.120000000000000000", "14")]
        )
        assert projection.thresholds == tuple(sorted(DEFAULT_THRESHOLDS, reverse=True))
