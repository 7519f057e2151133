"""Anchoring the receipts log on two real devnets, with a real (SQLite or PostgreSQL) database.

The nonce store of the adapters is a throwaway SQLite file per test: the EVM snapshot is
reverted after each test, and nonces must not outlive it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session

from backend.config import Settings
from backend.db import SessionFactory
from backend.receipts import anchoring
from backend.receipts.anchoring import (
    AnchorConflict,
    AnchorSchedule,
    AnchorTargets,
    anchor_once,
    due,
    refresh,
)
from backend.receipts.models import Anchor, AnchorStatus
from backend.receipts.service import issue_receipts, latest_checkpoint
from backend.receipts.signing import ReceiptSigner
from backend.receipts.tasks import anchor as anchor_task
from backend.worker import create_celery_app
from chain_adapters.base import ABI, ContractCall
from chain_adapters.compiler import CompiledProject
from chain_adapters.devnet import Devnet
from chain_adapters.evm.adapter import EvmAdapter
from chain_adapters.evm.store import chain_metadata
from chain_adapters.evm.transactions import TxPolicy
from hardhat_fixtures.scenarios import Market
from tests.receipts.conftest import anchoring_settings, create_draft

FAST_TX = TxPolicy(poll_interval=0.05, stuck_after=0.4, timeout=30.0)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def nonce_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'nonces.db'}")
    chain_metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def market(load_fixture: Callable[[str], Any]) -> Market:
    loaded: Market = load_fixture("two_chain_market")
    return loaded


@pytest.fixture
def abi(compiled: CompiledProject) -> ABI:
    return compiled.get("ReceiptAnchor").abi


MakeTargets = Callable[..., AnchorTargets]


@pytest.fixture
def make_targets(chains: list[Devnet], market: Market, nonce_engine: Engine) -> MakeTargets:
    def make(confirmations: int = 0) -> AnchorTargets:
        return {
            devnet.chain_id: (
                EvmAdapter(
                    devnet.chain_config(confirmations=confirmations),
                    engine=nonce_engine,
                    signer=market.operator,
                    tx_policy=FAST_TX,
                ),
                market.address(devnet.chain_id, "ReceiptAnchor"),
            )
            for devnet in chains
        }

    return make


@pytest.fixture
def targets(make_targets: MakeTargets) -> AnchorTargets:
    return make_targets()


@pytest.fixture
def session(session_factory: SessionFactory) -> Iterator[Session]:
    with session_factory() as session:
        yield session


def issue(session: Session, signer: ReceiptSigner, count: int) -> None:
    issue_receipts(
        session, [create_draft(subject=f"loan:{i}") for i in range(count)], signer=signer
    )
    session.commit()


def root_at(targets: AnchorTargets, chain_id: int, abi: ABI, size: int) -> bytes:
    adapter, contract = targets[chain_id]
    return bytes(adapter.call(ContractCall(contract, abi, "rootAt", (size,))))


def nonces(targets: AnchorTargets) -> dict[int, int]:
    return {
        chain_id: adapter.transaction_count(market_signer(adapter))
        for chain_id, (adapter, _) in targets.items()
    }


def market_signer(adapter: EvmAdapter) -> str:
    assert adapter.signer is not None
    return str(adapter.signer.address)


def rows(session: Session) -> list[Anchor]:
    return list(session.scalars(select(Anchor).order_by(Anchor.chain_id, Anchor.id)))


def live(session: Session, chain_id: int) -> list[tuple[int, str]]:
    return [
        (r.tree_size, r.status)
        for r in rows(session)
        if r.chain_id == chain_id and r.status != AnchorStatus.DROPPED.value
    ]


# ------------------------------------------------------------------------------------ anchoring


def test_anchors_on_both_chains_then_nothing_then_the_new_size(
    session: Session, signer: ReceiptSigner, targets: AnchorTargets, abi: ABI
) -> None:
    issue(session, signer, 10)
    records = anchor_once(session, signer=signer, adapters=targets, abi=abi, now=NOW)
    session.commit()

    signed = latest_checkpoint(session)
    assert signed is not None and signed.size == 10
    assert {r.chain_id for r in records} == set(targets)
    assert all(r.sent and r.status is AnchorStatus.CONFIRMED for r in records)
    for chain_id in targets:
        assert root_at(targets, chain_id, abi, 10) == signed.root
    stored = rows(session)
    assert [(r.tree_size, r.status, r.root) for r in stored] == [(10, "confirmed", signed.root)] * 2
    assert all(r.tx_hash and r.block_hash and r.block_number for r in stored)

    before = nonces(targets)
    assert anchor_once(session, signer=signer, adapters=targets, abi=abi, now=NOW) == []
    session.commit()
    assert nonces(targets) == before  # nothing sent
    assert len(rows(session)) == 2

    issue(session, signer, 5)
    records = anchor_once(session, signer=signer, adapters=targets, abi=abi, now=NOW)
    session.commit()
    signed = latest_checkpoint(session)
    assert signed is not None and signed.size == 15
    assert [(r.tree_size, r.sent) for r in records] == [(15, True)] * 2
    for chain_id in targets:
        assert root_at(targets, chain_id, abi, 15) == signed.root
        assert root_at(targets, chain_id, abi, 10) != signed.root
        assert live(session, chain_id) == [(10, "confirmed"), (15, "confirmed")]
    assert {c: n - before[c] for c, n in nonces(targets).items()} == {c: 1 for c in targets}


def test_an_empty_log_is_not_anchored(
    session: Session, signer: ReceiptSigner, targets: AnchorTargets, abi: ABI
) -> None:
    before = nonces(targets)
    assert anchor_once(session, signer=signer, adapters=targets, abi=abi, now=NOW) == []
    assert nonces(targets) == before


def test_a_crash_after_sending_does_not_send_the_size_again(
    session: Session, signer: ReceiptSigner, targets: AnchorTargets, abi: ABI
) -> None:
    issue(session, signer, 10)
    first = anchor_once(session, signer=signer, adapters=targets, abi=abi, now=NOW)
    session.rollback()  # the worker died before its commit: no row, no checkpoint
    assert rows(session) == []
    sent = nonces(targets)

    again = anchor_once(session, signer=signer, adapters=targets, abi=abi, now=NOW)
    session.commit()
    assert nonces(targets) == sent  # no second transaction
    assert not any(r.sent for r in again)
    assert {(r.chain_id, r.tx_hash, r.block_hash) for r in again} == {
        (r.chain_id, r.tx_hash, r.block_hash) for r in first
    }
    assert [(r.tree_size, r.status) for r in rows(session)] == [(10, "confirmed")] * 2


def test_a_reverted_anchor_as_tree_size_not_increasing_is_adopted(
    session: Session,
    signer: ReceiptSigner,
    targets: AnchorTargets,
    abi: ABI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issue(session, signer, 10)
    anchor_once(session, signer=signer, adapters=targets, abi=abi, now=NOW)
    session.rollback()
    sent = nonces(targets)
    # As if the chain were read before another sender's anchor landed: the send then reverts
    # (at estimation, so no nonce is used) and the decoded error leads to adopting the anchor.
    monkeypatch.setattr(anchoring, "_latest_size", lambda *_: 0)
    again = anchor_once(session, signer=signer, adapters=targets, abi=abi, now=NOW)
    assert nonces(targets) == sent
    assert [(r.tree_size, r.sent, r.status) for r in again] == [
        (10, False, AnchorStatus.CONFIRMED)
    ] * 2


def test_never_anchors_at_or_below_the_chains_latest_size(
    session: Session, signer: ReceiptSigner, targets: AnchorTargets, abi: ABI
) -> None:
    chain_id = next(iter(targets))
    adapter, contract = targets[chain_id]
    adapter.send(ContractCall(contract, abi, "anchor", (20, b"\x01" * 32)), wait="mined")
    issue(session, signer, 10)
    before = nonces(targets)
    records = anchor_once(session, signer=signer, adapters=targets, abi=abi, now=NOW)
    assert [r.chain_id for r in records] == [c for c in targets if c != chain_id]
    assert nonces(targets)[chain_id] == before[chain_id]
    assert root_at(targets, chain_id, abi, 10) == bytes(32)


def test_another_root_for_our_size_is_a_conflict(
    session: Session, signer: ReceiptSigner, targets: AnchorTargets, abi: ABI
) -> None:
    chain_id = next(iter(targets))
    adapter, contract = targets[chain_id]
    adapter.send(ContractCall(contract, abi, "anchor", (10, b"\x01" * 32)), wait="mined")
    issue(session, signer, 10)
    with pytest.raises(AnchorConflict, match="size 10"):
        anchor_once(session, signer=signer, adapters=targets, abi=abi, now=NOW)


# -------------------------------------------------------------------------- reorgs, finality


def test_a_reorged_anchor_is_dropped_and_sent_again(
    session: Session,
    signer: ReceiptSigner,
    targets: AnchorTargets,
    abi: ABI,
    chains: list[Devnet],
) -> None:
    issue(session, signer, 10)
    anchor_once(session, signer=signer, adapters=targets, abi=abi, now=NOW)
    session.commit()
    reorged = chains[0].chain_id
    adapter, _ = targets[reorged]
    adapter.devnet_request("anvil_rollback", [1])  # the block holding the anchor is gone
    assert root_at(targets, reorged, abi, 10) == bytes(32)

    changed = refresh(session, targets)
    session.commit()
    by_chain = {r.chain_id: r.status for r in changed}
    assert by_chain[reorged] == "dropped"
    assert all(s == "final" for c, s in by_chain.items() if c != reorged)  # confirmations 0
    assert live(session, reorged) == []

    records = anchor_once(session, signer=signer, adapters=targets, abi=abi, now=NOW)
    session.commit()
    assert [(r.chain_id, r.tree_size, r.sent) for r in records] == [(reorged, 10, True)]
    signed = latest_checkpoint(session)
    assert signed is not None
    assert root_at(targets, reorged, abi, 10) == signed.root
    assert live(session, reorged) == [(10, "confirmed")]
    statuses = [r.status for r in rows(session) if r.chain_id == reorged]
    assert statuses == ["dropped", "confirmed"]

    refresh(session, targets)
    assert live(session, reorged) == [(10, "final")]


def test_confirmed_becomes_final_after_the_configured_confirmations(
    session: Session, signer: ReceiptSigner, make_targets: MakeTargets, abi: ABI
) -> None:
    targets = make_targets(confirmations=2)
    issue(session, signer, 3)
    anchor_once(session, signer=signer, adapters=targets, abi=abi, now=NOW)
    session.commit()
    assert refresh(session, targets) == []
    assert {r.status for r in rows(session)} == {"confirmed"}

    for adapter, _ in targets.values():
        adapter.devnet_request("anvil_mine", ["0x1"])
    assert refresh(session, targets) == []  # one block on top: not yet
    for adapter, _ in targets.values():
        adapter.devnet_request("anvil_mine", ["0x1"])
    assert len(refresh(session, targets)) == 2
    session.commit()
    assert {r.status for r in rows(session)} == {"final"}


# ------------------------------------------------------------------------------------- policy


def test_due_by_count_by_age_and_only_when_the_log_grew(
    session: Session, signer: ReceiptSigner, targets: AnchorTargets, abi: ABI
) -> None:
    policy = AnchorSchedule(max_age_seconds=60, max_receipts=5)
    assert not due(session, policy, NOW)  # empty log
    issue(session, signer, 2)
    assert due(session, policy, NOW)  # never anchored
    anchor_once(session, signer=signer, adapters=targets, abi=abi, now=NOW)
    session.commit()
    assert not due(session, policy, NOW + timedelta(hours=1))  # did not grow

    issue(session, signer, 4)
    assert not due(session, policy, NOW + timedelta(seconds=59))
    assert due(session, policy, NOW + timedelta(seconds=60))  # age
    issue(session, signer, 1)
    assert due(session, policy, NOW)  # 5 new receipts
    # a configured chain that never anchored is due at once
    assert due(session, AnchorSchedule(3600, 1000), NOW, chain_ids=[*targets, 999])


def test_due_before_a_waiting_receipts_signed_deadline(
    session: Session, signer: ReceiptSigner, targets: AnchorTargets, abi: ABI
) -> None:
    policy = AnchorSchedule(max_age_seconds=3600, max_receipts=1000, check_interval_seconds=30)
    issue(session, signer, 1)
    anchor_once(session, signer=signer, adapters=targets, abi=abi)
    session.commit()
    issue_receipts(
        session,
        [create_draft(subject="soon")],
        signer=signer,
        max_inclusion_delay=timedelta(seconds=300),
    )
    session.commit()
    now = datetime.now(UTC)
    assert not due(session, policy, now)  # 300 s left: the next check comes in time
    assert not due(session, policy, now + timedelta(seconds=230))
    assert due(session, policy, now + timedelta(seconds=245))  # two checks would be too late


# --------------------------------------------------------------------------------------- task


def test_the_celery_task_anchors_from_settings_and_is_idempotent(
    receipts_settings: Settings,
    session_factory: SessionFactory,
    signer: ReceiptSigner,
    chains: list[Devnet],
    market: Market,
    abi: ABI,
    tmp_path: Path,
) -> None:
    settings = anchoring_settings(receipts_settings, chains, market, tmp_path, operator_key=None)
    app = create_celery_app(settings)
    assert anchor_task.name == "receipts.anchor"
    task = app.tasks["receipts.anchor"]  # the worker finds it by autodiscovery
    try:
        with session_factory() as session:
            issue(session, signer, 4)
        result = task.apply().get()
        assert [(a["size"], a["sent"]) for a in result["anchored"]] == [(4, True)] * 2
        again = task.apply().get()
        assert again["anchored"] == []  # not due: the log did not grow
        assert sorted(r["status"] for r in again["refreshed"]) == ["final", "final"]
        with session_factory() as session:
            signed = latest_checkpoint(session)
            assert signed is not None and signed.size == 4
            assert [(r.tree_size, r.status) for r in rows(session)] == [(4, "final")] * 2
        targets = {
            d.chain_id: (
                EvmAdapter(d.chain_config()),
                market.address(d.chain_id, "ReceiptAnchor"),
            )
            for d in chains
        }
        for chain_id in targets:
            assert root_at(targets, chain_id, abi, 4) == signed.root
    finally:
        app.dispose_engine()
