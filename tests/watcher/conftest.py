"""Watcher tests: a freshly migrated database per test (PostgreSQL if DATABASE_URL, else SQLite),
an adapter on devnet A with a chosen finality depth, and helpers that drive real contracts."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from web3 import Web3

from backend.config import Settings
from backend.db import SessionFactory, create_db_engine, create_session_factory, migrate
from backend.watcher.anchors import ANCHORED
from backend.watcher.backfill import backfill
from backend.watcher.ingest import ChainWatcher, StepResult
from backend.watcher.models import AnchoredEffect, FinalAnchoredEffect, WatcherCursor, WatcherLog
from backend.watcher.projections import default_registry
from backend.watcher.rebuild import rebuild
from chain_adapters.devnet import Devnet
from chain_adapters.evm.adapter import EvmAdapter
from tests.backend.conftest import fresh_postgres_database, is_postgres

ANCHOR_ABI = [
    {
        "type": "function",
        "name": "anchor",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "treeSize", "type": "uint64"}, {"name": "root", "type": "bytes32"}],
        "outputs": [],
    },
    {
        "type": "function",
        "name": "latest",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [
            {"name": "treeSize", "type": "uint64"},
            {"name": "root", "type": "bytes32"},
            {"name": "blockNumber", "type": "uint64"},
        ],
    },
]


@pytest.fixture
def watcher_settings(tmp_path: Path) -> Iterator[Settings]:
    base = os.environ.get("DATABASE_URL")
    if is_postgres(base):
        assert base is not None
        with fresh_postgres_database(base) as url:
            settings = Settings(
                _env_file=None, environment="test", database_url=url, data_dir=tmp_path / "data"
            )
            migrate(settings)
            yield settings
    else:
        settings = Settings(
            _env_file=None,
            environment="test",
            database_url=f"sqlite:///{tmp_path / 'watcher.db'}",
            data_dir=tmp_path / "data",
        )
        migrate(settings)
        yield settings


@pytest.fixture
def engine(watcher_settings: Settings) -> Iterator[Engine]:
    engine = create_db_engine(watcher_settings)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def factory(engine: Engine) -> SessionFactory:
    return create_session_factory(engine)


@dataclass
class Anchors:
    """ReceiptAnchor on devnet A, driven by the operator (an unlocked Anvil account)."""

    w3: Web3
    address: str
    operator: str

    def send(self, count: int = 1) -> None:
        contract = self.w3.eth.contract(
            address=Web3.to_checksum_address(self.address), abi=ANCHOR_ABI
        )
        size = int(contract.functions.latest().call()[0])
        for _ in range(count):
            size += 1
            tx = contract.functions.anchor(size, size.to_bytes(32, "big")).transact(
                {"from": self.operator}
            )
            self.w3.eth.wait_for_transaction_receipt(tx)

    def mine(self, blocks: int = 1) -> None:
        self.w3.provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]

    def rpc(self, method: str, params: list[Any]) -> Any:
        response = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        assert "error" not in response, response
        return response.get("result")


@pytest.fixture
def market(load_fixture: Callable[[str], Any]) -> Any:
    return load_fixture("two_chain_market")


@pytest.fixture
def anchors(market: Any, chains: list[Devnet]) -> Anchors:
    devnet = chains[0]
    return Anchors(
        w3=Web3(Web3.HTTPProvider(devnet.rpc_url)),
        address=market.address(devnet.chain_id, "ReceiptAnchor"),
        operator=market.operator.address,
    )


def make_watcher(
    devnet: Devnet, address: str, *, confirmations: int, rpc_url: str | None = None
) -> ChainWatcher:
    config = devnet.chain_config(confirmations=confirmations)
    if rpc_url is not None:
        config = config.model_copy(update={"rpc_urls": (rpc_url,)})
    return ChainWatcher(EvmAdapter(config), [address], default_registry())


def run_to_head(factory: SessionFactory, watcher: ChainWatcher) -> list[StepResult]:
    """Live steps (the same loop `watcher.ingest` runs) until the cursor is at the head."""
    return backfill(factory, watcher, from_block=0, until_head=True)


def log_keys(session: Session, chain_id: int) -> list[tuple[str, int, int]]:
    rows = session.execute(
        select(WatcherLog.block_hash, WatcherLog.log_index, WatcherLog.block_number)
        .where(WatcherLog.chain_id == chain_id)
        .order_by(WatcherLog.block_number, WatcherLog.log_index)
    )
    return [(r[0], r[1], r[2]) for r in rows]


def effects(session: Session, chain_id: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    head = session.execute(
        select(
            AnchoredEffect.block_hash,
            AnchoredEffect.log_index,
            AnchoredEffect.tree_size,
            AnchoredEffect.root,
            AnchoredEffect.prev_size,
        )
        .where(AnchoredEffect.chain_id == chain_id)
        .order_by(AnchoredEffect.block_number, AnchoredEffect.log_index)
    ).all()
    final = session.execute(
        select(
            FinalAnchoredEffect.block_hash,
            FinalAnchoredEffect.log_index,
            FinalAnchoredEffect.tree_size,
        )
        .where(FinalAnchoredEffect.chain_id == chain_id)
        .order_by(FinalAnchoredEffect.block_number, FinalAnchoredEffect.log_index)
    ).all()
    return [tuple(r) for r in head], [tuple(r) for r in final]


def assert_consistent(
    factory: SessionFactory, watcher: ChainWatcher, *, truth: EvmAdapter | None = None
) -> None:
    """Stored logs == the canonical chain's logs; effects == a rebuild from those logs."""
    chain_id = watcher.chain_id
    node = truth or watcher.adapter
    with factory() as session, session.begin():
        cursor = session.get(WatcherCursor, chain_id)
        assert cursor is not None
        chain_logs = node.get_logs(
            from_block=cursor.start_block, to_block=cursor.block_number, address=watcher.addresses
        )
        canonical = [(log.block_hash, log.log_index, log.block_number) for log in chain_logs]
        assert log_keys(session, chain_id) == canonical
        incremental = effects(session, chain_id)
        final_logs = [
            (log.block_hash, log.log_index)
            for log in chain_logs
            if log.block_number <= cursor.final_number and log.topics[0] == ANCHORED.topic0
        ]
        assert [e[:2] for e in incremental[1]] == final_logs
    with factory() as session, session.begin():
        rebuild(session, chain_id, default_registry())
    with factory() as session, session.begin():
        assert effects(session, chain_id) == incremental
