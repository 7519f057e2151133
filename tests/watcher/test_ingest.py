"""Ingestion of real ReceiptAnchor events on Anvil, and randomised reorgs of depth 1-5."""

from __future__ import annotations

import random

from backend.db import SessionFactory
from backend.watcher.anchors import latest_anchored_size
from backend.watcher.backfill import backfill
from chain_adapters.devnet import Devnet
from tests.watcher.conftest import Anchors, assert_consistent, effects, make_watcher, run_to_head


def test_ingests_anchored_events_and_delivers_final_ones_once(
    factory: SessionFactory, anchors: Anchors, chains: list[Devnet]
) -> None:
    watcher = make_watcher(chains[0], anchors.address, confirmations=3)
    backfill(factory, watcher, from_block=0)
    anchors.send(3)
    run_to_head(factory, watcher)
    chain_id = watcher.chain_id
    with factory() as session:
        head_effects, final_effects = effects(session, chain_id)
        assert [e[2] for e in head_effects][-3:] == [1, 2, 3]
        assert latest_anchored_size(session, chain_id) == 3
        assert latest_anchored_size(session, chain_id, final=True) < 3  # not final yet
    assert_consistent(factory, watcher)
    anchors.mine(3)
    run_to_head(factory, watcher)
    run_to_head(factory, watcher)  # a second pass delivers nothing again
    with factory() as session:
        head_effects, final_effects = effects(session, chain_id)
        assert [e[:2] for e in final_effects] == [e[:2] for e in head_effects]
        assert latest_anchored_size(session, chain_id, final=True) == 3
    assert_consistent(factory, watcher)


def test_randomised_reorgs_keep_incremental_state_equal_to_a_rebuild(
    factory: SessionFactory, anchors: Anchors, chains: list[Devnet]
) -> None:
    rng = random.Random(20261122)
    watcher = make_watcher(chains[0], anchors.address, confirmations=6)
    anchors.mine(8)
    backfill(factory, watcher, from_block=0)
    depths: list[int] = []
    for _ in range(50):
        for _ in range(rng.randint(0, 3)):
            if rng.random() < 0.7:
                anchors.send(rng.randint(1, 2))
            else:
                anchors.mine(rng.randint(1, 2))
        if rng.random() < 0.5:
            run_to_head(factory, watcher)  # sometimes the watcher sees the doomed blocks
        depth = rng.randint(1, 5)
        if rng.random() < 0.5:
            anchors.rpc("anvil_reorg", [depth, []])
        else:
            # A shorter fork, then new blocks back to the old height: two rollbacks in a row
            # would otherwise rewind past blocks that were already final (a finality violation,
            # not a reorg the confirmations rule promises to absorb).
            anchors.rpc("anvil_rollback", [depth])
            if rng.random() < 0.5:
                anchors.send(1)
                depth -= 1
            if depth:
                anchors.mine(depth)
        results = run_to_head(factory, watcher)
        depths.extend(r.reorg_depth for r in results if r.reorg_depth)
        assert_consistent(factory, watcher)
    assert depths, "no round reorganised blocks the watcher had stored"
    assert max(depths) <= 5
