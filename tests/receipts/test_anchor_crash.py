"""Kill -9 a real Celery worker while it anchors, 20 times; nothing is lost or anchored twice.

A writer thread keeps issuing receipts; the test keeps asking the worker to anchor (the log is
due after every receipt) and SIGKILLs the worker's process at a random moment after it came up,
then starts a new one on the same queue. Afterwards a clean worker catches up and:

* every issued receipt is in the log exactly once (leaf indices 0..n-1) and its proof bundle
  verifies against both chains;
* on each chain the `Anchored` events have strictly increasing sizes (no size twice), each with
  the root our log has at that size;
* the database holds one live anchor row per (chain, size), each matching an on-chain event.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from web3 import Web3

from backend.config import Settings
from backend.db import SessionFactory
from backend.receipts.anchoring import ANCHORED_TOPIC
from backend.receipts.models import Anchor, AnchorStatus, LogCheckpoint, Receipt
from backend.receipts.publication import proof_bundle
from backend.receipts.service import issue_receipts
from backend.receipts.signing import ReceiptSigner
from backend.receipts.verifier import verify_bundle
from backend.worker import create_celery_app
from chain_adapters.devnet import Devnet
from hardhat_fixtures.scenarios import Market
from tests.backend.conftest import KillableWorkers, wait_for
from tests.receipts.conftest import anchoring_settings, create_draft

KILLS = 20


@pytest.fixture
def market(load_fixture: Callable[[str], Any]) -> Market:
    loaded: Market = load_fixture("two_chain_market")
    return loaded


@pytest.fixture
def crash_settings(
    receipts_settings: Settings, chains: list[Devnet], market: Market, tmp_path: Path
) -> Settings:
    """The receipts database, both devnets in a chains file, manifests naming ReceiptAnchor,
    and a log that is due for anchoring after every single receipt."""
    return anchoring_settings(
        receipts_settings,
        chains,
        market,
        tmp_path,
        anchor_max_receipts=1,
        redis_url=os.environ.get("REDIS_URL"),
    )


@pytest.fixture
def workers(crash_settings: Settings, tmp_path: Path) -> Iterator[KillableWorkers]:
    pool = KillableWorkers(
        crash_settings,
        tmp_path,
        name="anchor-crash",
        env={
            "CREDAGG_CHAINS_FILE": str(crash_settings.chains_file),
            "CREDAGG_ANCHOR_MAX_RECEIPTS": str(crash_settings.anchor_max_receipts),
        },
    )
    try:
        yield pool
    finally:
        pool.kill_all()


class Writer(threading.Thread):
    """Issues one receipt at a time, committed, until stopped; counts what it committed."""

    def __init__(self, factory: SessionFactory, signer: ReceiptSigner) -> None:
        super().__init__(daemon=True)
        self.factory, self.signer = factory, signer
        self.committed = 0
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                with self.factory() as session:
                    draft = create_draft(subject=f"loan:{self.committed}")
                    issue_receipts(session, [draft], signer=self.signer)
                    session.commit()
                self.committed += 1
                time.sleep(0.05)
        except BaseException as exc:  # surfaced by the test, not swallowed
            self.error = exc


def anchored_events(devnet: Devnet, contract: str) -> list[tuple[int, bytes]]:
    w3 = Web3(Web3.HTTPProvider(devnet.rpc_url))
    logs = w3.eth.get_logs(
        {
            "address": Web3.to_checksum_address(contract),
            "fromBlock": 0,
            "toBlock": "latest",
            "topics": [ANCHORED_TOPIC],
        }
    )
    return [(int.from_bytes(log["topics"][1], "big"), bytes(log["data"][:32])) for log in logs]


def test_kill_9_during_anchoring_loses_nothing_and_never_anchors_a_size_twice(
    crash_settings: Settings,
    session_factory: SessionFactory,
    signer: ReceiptSigner,
    chains: list[Devnet],
    market: Market,
    workers: KillableWorkers,
) -> None:
    rng = random.Random(0xC4A5)
    celery = create_celery_app(crash_settings)
    queue = workers.queue
    writer = Writer(session_factory, signer)
    writer.start()
    kills_during_anchoring = 0
    try:
        for _ in range(KILLS):
            worker = workers.start()
            assert wait_for(worker.ready, timeout=60), worker.log_path.read_text()
            deadline = time.monotonic() + rng.uniform(0.1, 1.5)
            while time.monotonic() < deadline:
                celery.send_task("receipts.anchor", queue=queue)
                time.sleep(0.1)
            log = worker.log_path.read_text(errors="replace")
            kills_during_anchoring += log.count("] received") > log.count("] succeeded in")
            worker.kill()
        writer.stop_event.set()
        writer.join(timeout=30)
        assert writer.error is None, writer.error

        # A clean worker catches up: the whole log ends up anchored on both chains.
        final = workers.start()
        assert wait_for(final.ready, timeout=60), final.log_path.read_text()

        def caught_up() -> bool:
            celery.send_task("receipts.anchor", queue=queue)
            with session_factory() as session:
                size = session.scalar(
                    select(Receipt.leaf_index).order_by(Receipt.leaf_index.desc()).limit(1)
                )
                live = session.scalars(
                    select(Anchor.chain_id).where(
                        Anchor.tree_size == (size or 0) + 1,
                        Anchor.status != AnchorStatus.DROPPED.value,
                        Anchor.block_number.is_not(None),
                    )
                ).all()
            return sorted(live) == sorted(d.chain_id for d in chains)

        assert wait_for(caught_up, timeout=120, interval=1.0), final.log_path.read_text()
    finally:
        writer.stop_event.set()
        celery.close()

    assert kills_during_anchoring > 0  # the kills did land while anchoring work was queued
    with session_factory() as session:
        indices = list(session.scalars(select(Receipt.leaf_index).order_by(Receipt.leaf_index)))
        assert indices == list(range(writer.committed))
        roots = {c.size: c.root for c in session.scalars(select(LogCheckpoint))}
        rows = session.scalars(
            select(Anchor).where(Anchor.status != AnchorStatus.DROPPED.value)
        ).all()
        for devnet in chains:
            contract = market.address(devnet.chain_id, "ReceiptAnchor")
            events = anchored_events(devnet, contract)
            sizes = [size for size, _ in events]
            assert sizes == sorted(set(sizes)), f"chain {devnet.chain_id} anchored {sizes}"
            for size, root in events:
                assert roots[size] == root
            recorded = sorted(r.tree_size for r in rows if r.chain_id == devnet.chain_id)
            assert recorded == sorted(set(recorded))
            assert set(recorded) <= set(sizes)

        for devnet in chains:  # Anvil's `finalized` is head - 64: make every anchor final
            Web3(Web3.HTTPProvider(devnet.rpc_url)).provider.make_request(
                "anvil_mine",
                [hex(70)],  # type: ignore[arg-type]
            )
        now = datetime.now(UTC)
        for receipt in session.scalars(select(Receipt).order_by(Receipt.leaf_index)):
            bundle = proof_bundle(session, receipt, signer=signer, now=now)
            assert len(bundle.anchors) == len(chains)
            report = verify_bundle(
                bundle,
                pubkey=signer.public_key_bytes,
                rpc_urls=[d.rpc_url for d in chains],
            )
            assert report.exit_code == 0, report.to_json()
