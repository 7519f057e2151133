"""Randomised reorgs of depth 1-5 interleaved with loans, deposits, price moves and repayments:
after every round the incrementally maintained risk and billing state equals a rebuild."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import select

from backend.billing.repository import BillingRepository
from backend.db import SessionFactory
from backend.risk.models import RiskAlert
from backend.risk.repository import RiskRepository
from backend.risk.service import loans
from backend.watcher.backfill import backfill
from backend.watcher.models import WatcherCursor
from backend.watcher.projections import default_registry
from backend.watcher.rebuild import rebuild
from chain_adapters.devnet import Devnet
from tests.risk.conftest import Lending
from tests.watcher.conftest import log_keys


def snapshot(factory: SessionFactory, chain_id: int) -> dict[str, Any]:
    """Every effect row and the derived state (loans, health) of the risk and billing domains."""
    with factory() as session:
        alerts = session.scalars(
            select(RiskAlert)
            .where(RiskAlert.chain_id == chain_id)
            .order_by(RiskAlert.block_number, RiskAlert.log_index, RiskAlert.loan_id)
        ).all()
        return {
            "effects": RiskRepository(session).effects(chain_id),
            "alerts": [(a.block_hash, a.log_index, a.loan_id, a.threshold) for a in alerts],
            "loans": [(vars(v.loan), v.health_factor) for v in loans(session, chain_id)],
            "originations": BillingRepository(session).all_originations(chain_id),
        }


def test_randomised_reorgs_keep_risk_and_billing_equal_to_a_rebuild(
    factory: SessionFactory, lending: Lending, chains: list[Devnet]
) -> None:
    rng = random.Random(61122)
    watcher = lending.watcher(chains[0], confirmations=6)
    open_loans = [lending.open_loan(1_000 * 10**6, 10**18)]
    lending.mine(8)
    backfill(factory, watcher, from_block=0, until_head=True)
    depths: list[int] = []
    price = 2_000
    for _ in range(50):
        for _ in range(rng.randint(1, 3)):
            action = rng.random()
            if action < 0.25:
                open_loans.append(lending.open_loan(rng.randint(100, 1_000) * 10**6, 10**18))
            elif action < 0.5:
                price = max(1_100, min(2_600, price + rng.choice((-150, -100, 100, 150))))
                lending.set_eth_price(price)
            elif action < 0.7:
                lending.deposit(rng.choice(open_loans), rng.randint(1, 5) * 10**16)
            elif action < 0.9:
                lending.repay(rng.choice(open_loans), rng.randint(1, 20) * 10**6)
            else:
                lending.mine(rng.randint(1, 2))
        if rng.random() < 0.5:
            backfill(factory, watcher, from_block=0, until_head=True)
        depth = rng.randint(1, 5)
        if rng.random() < 0.5:
            lending.rpc("anvil_reorg", [depth, []])
        else:
            lending.rpc("anvil_rollback", [depth])
            lending.mine(depth)
        results = backfill(factory, watcher, from_block=0, until_head=True)
        depths.extend(r.reorg_depth for r in results if r.reorg_depth)
        # The chain may have lost loans the driver opened: keep only those that still exist.
        count = int(lending.contract("CreditAggregator").functions.loanCount().call())
        open_loans = [i for i in open_loans if i <= count] or [lending.open_loan(10**8, 10**18)]
        with factory() as session:
            cursor = session.get(WatcherCursor, watcher.chain_id)
            assert cursor is not None
            chain_logs = watcher.adapter.get_logs(
                from_block=cursor.start_block,
                to_block=cursor.block_number,
                address=watcher.addresses,
            )
            assert log_keys(session, watcher.chain_id) == [
                (log.block_hash, log.log_index, log.block_number) for log in chain_logs
            ]
        incremental = snapshot(factory, watcher.chain_id)
        with factory() as session, session.begin():
            rebuild(session, watcher.chain_id, default_registry())
        assert snapshot(factory, watcher.chain_id) == incremental
    assert depths and max(depths) <= 5
    final = snapshot(factory, watcher.chain_id)
    assert final["alerts"], "the price walk never crossed a threshold"
    assert final["originations"], "no loan became final"
