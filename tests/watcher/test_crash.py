"""Kill -9 a real Celery worker running `watcher.ingest` at random moments (20 times) while
anchors and loans are produced; nothing is lost or applied twice: afterwards the stored logs are
the chain's, effects equal a rebuild, and so do billing totals (originations and volume per
provider) and risk state."""

from __future__ import annotations

import functools
import json
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from backend.billing.repository import BillingRepository
from backend.config import Settings
from backend.db import SessionFactory, session_scope
from backend.risk.repository import RiskRepository
from backend.watcher.ingest import ChainWatcher, start_cursor
from backend.watcher.targets import watcher_for
from backend.worker import create_celery_app
from chain_adapters.deploy import manifest_path
from chain_adapters.devnet import Devnet
from chain_adapters.registry import dump_chains
from tests.backend.conftest import KillableWorker, KillableWorkers, wait_for
from tests.risk.conftest import Lending, lending  # noqa: F401 - the loan driver fixture
from tests.watcher.conftest import Anchors, assert_consistent, run_to_head

KILLS = 20
LOAN_EVERY = 8  # producer iterations per LoanOpened
CONFIRMATIONS = 2


@pytest.fixture
def crash_settings(
    watcher_settings: Settings,
    anchors: Anchors,
    market: Any,
    chains: list[Devnet],
    tmp_path: Path,
) -> Settings:
    """Devnet A in a chains file; a manifest naming its ReceiptAnchor, CreditAggregator and
    CollateralManager (the worker also watches the manager's price feeds)."""
    devnet = chains[0]
    data_dir = tmp_path / "data"
    path = manifest_path(data_dir, devnet.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "chain_id": devnet.chain_id,
                "contracts": {
                    "ReceiptAnchor": {"address": anchors.address},
                    "CreditAggregator": {
                        "address": market.address(devnet.chain_id, "CreditAggregator")
                    },
                    "CollateralManager": {
                        "address": market.address(devnet.chain_id, "CollateralManager")
                    },
                },
            }
        ),
        encoding="utf-8",
    )
    chains_toml = tmp_path / "chains.toml"
    chains_toml.write_text(
        dump_chains([devnet.chain_config(confirmations=CONFIRMATIONS)]), encoding="utf-8"
    )
    return watcher_settings.model_copy(
        update={
            "data_dir": data_dir,
            "chains_file": chains_toml,
            "redis_url": os.environ.get("REDIS_URL"),
        }
    )


@pytest.fixture
def workers(crash_settings: Settings, tmp_path: Path) -> Iterator[KillableWorkers]:
    pool = KillableWorkers(
        crash_settings,
        tmp_path,
        name="watcher",
        env={"CREDAGG_CHAINS_FILE": str(crash_settings.chains_file)},
    )
    try:
        yield pool
    finally:
        pool.kill_all()


def running(worker: KillableWorker) -> bool:
    return in_flight(worker.log())


def in_flight(log: str) -> bool:
    """A task was received and has not finished (nor failed) yet."""
    return log.count("] received") > log.count("] succeeded in") + log.count("] raised")


class Producer(threading.Thread):
    """Anchors (one event per transaction, one block each) and, every LOAN_EVERY rounds, a loan
    (LoanOpened: billing originations, risk exposure) until stopped. One thread sends it all,
    so the operator's nonces never race."""

    def __init__(self, anchors: Anchors, driver: Lending, rpc_url: str) -> None:
        super().__init__(daemon=True)
        self.anchors = Anchors(Web3(Web3.HTTPProvider(rpc_url)), anchors.address, anchors.operator)
        self.lending = driver
        self.loans = 0
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        rounds = 0
        try:
            while not self.stop_event.is_set():
                self.anchors.send(3)
                rounds += 1
                if rounds % LOAN_EVERY == 1:
                    self.lending.open_loan(1_000 * 10**6 + rounds, 0)
                    self.loans += 1
                time.sleep(0.02)
        except BaseException as exc:  # surfaced by the test
            self.error = exc


def test_kill_9_during_ingestion_leaves_no_missing_or_duplicate_effect(
    crash_settings: Settings,
    factory: SessionFactory,
    anchors: Anchors,
    chains: list[Devnet],
    lending: Lending,  # noqa: F811
    workers: KillableWorkers,
) -> None:
    rng = random.Random(0x9A7C)
    watcher = watcher_for(crash_settings, chains[0].chain_config(confirmations=CONFIRMATIONS))
    assert watcher is not None
    assert lending.contract("CreditAggregator").address.lower() in watcher.addresses
    with session_scope(factory) as session:
        start_cursor(session, watcher.adapter, from_block=int(anchors.w3.eth.block_number))
    celery = create_celery_app(crash_settings)
    queue = workers.queue
    producer = Producer(anchors, lending, chains[0].rpc_url)
    producer.start()
    interrupted = 0
    try:
        for _ in range(KILLS):
            worker = workers.start()
            assert wait_for(worker.ready, timeout=60), worker.log()
            deadline = time.monotonic() + rng.uniform(0.2, 2.0)
            while time.monotonic() < deadline:  # a backlog: the worker is busy when killed
                celery.send_task("watcher.ingest", queue=queue)
                time.sleep(0.02)
            # Aim the kill at a running task (with a backlog, one starts every few ms).
            wait_for(functools.partial(running, worker), timeout=2.0, interval=0.002)
            worker.kill()
            log = worker.log()
            if in_flight(log):
                interrupted += 1  # killed while a task it received had not finished
    finally:
        producer.stop_event.set()
        producer.join(timeout=30)
    assert producer.error is None, producer.error
    assert producer.loans > 0, "no loan was opened during the kills"
    assert interrupted > 0, "no kill landed during an ingestion task"
    anchors.mine(CONFIRMATIONS)
    final = workers.start()  # a clean worker catches up after the crashes
    assert wait_for(final.ready, timeout=60), final.log()
    head = int(anchors.w3.eth.block_number)

    def caught_up() -> bool:
        # A tick may find the chain's writer lock still held while PostgreSQL notices that a
        # killed worker's connection is gone; it skips (cursor -1) and the next tick goes on.
        outcome = celery.send_task("watcher.ingest", queue=queue).get(timeout=120)
        return int(outcome[str(watcher.chain_id)].get("cursor", -1)) >= head

    assert wait_for(caught_up, timeout=180, interval=1.0), final.log()
    run_to_head(factory, watcher)
    incremental = state(factory, watcher)
    assert len(incremental[0]) == producer.loans, "every LoanOpened is final and billed once"
    assert_consistent(factory, watcher)  # logs == the chain; effects == a rebuild (it rebuilds)
    assert state(factory, watcher) == incremental  # billing totals and risk state too


def state(
    factory: SessionFactory, watcher: ChainWatcher
) -> tuple[list[tuple[object, ...]], dict[str, tuple[int, int]], list[Any]]:
    """Billing originations, per-provider (count, volume) totals, and every risk effect."""
    with factory() as session, session.begin():
        originations = BillingRepository(session).all_originations(watcher.chain_id)
        totals: dict[str, tuple[int, int]] = {}
        for row in originations:
            provider, principal = str(row[3]), int(str(row[4]))
            count, volume = totals.get(provider, (0, 0))
            totals[provider] = (count + 1, volume + principal)
        risk = sorted(RiskRepository(session).effects(watcher.chain_id), key=repr)
        return originations, totals, risk
