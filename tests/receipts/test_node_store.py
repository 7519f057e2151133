"""The database NodeStore: the core prover's protocol, the cache-extension arithmetic, and
proofs over a 5,000-receipt log that read O(log n) rows and write none."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event

from backend.db import SessionFactory, session_scope
from backend.receipts.commitment import leaf_hash
from backend.receipts.merkle import (
    MemoryNodeStore,
    NodeStore,
    consistency_proof,
    hash_leaf,
    inclusion_proof,
    merkle_root,
    subtree_root,
    verify_consistency,
    verify_inclusion,
)
from backend.receipts.node_store import DbNodeStore, frontier_keys, new_complete_nodes
from backend.receipts.service import (
    checkpoint,
    consistency_proof_between,
    inclusion_proof_for,
    issue_receipts,
)
from backend.receipts.signing import ReceiptSigner

from .conftest import create_draft


def entry(i: int) -> bytes:
    return i.to_bytes(32, "big")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 70), min_size=1, max_size=10))
def test_extending_the_cache_batch_by_batch_equals_building_it_at_once(batches: list[int]) -> None:
    stored: dict[tuple[int, int], bytes] = {}
    size = 0
    for count in batches:
        leaves = [hash_leaf(entry(i)) for i in range(size, size + count)]
        keys = frontier_keys(size, size + count)
        assert all(key in stored for key in keys)
        assert len(keys) <= (size + count).bit_length()
        added = new_complete_nodes(size, leaves, {key: stored[key] for key in keys})
        assert not set(added) & set(stored)  # only new nodes, never a rewrite
        stored.update(added)
        size += count
    memory = MemoryNodeStore([entry(i) for i in range(size)])
    expected = {
        (level, index): subtree_root(memory, index << level, (index + 1) << level)
        for level in range(size.bit_length())
        for index in range(size >> level)
    }
    assert stored == expected


def test_db_node_store_is_a_node_store_whose_leaves_are_commitments(
    session_factory: SessionFactory, signer: ReceiptSigner
) -> None:
    with session_scope(session_factory) as session:
        issued = issue_receipts(session, [create_draft() for _ in range(5)], signer=signer)
    with session_scope(session_factory) as session:
        store = DbNodeStore(session)
        assert isinstance(store, NodeStore)
        assert store.size == 5
        assert [store.leaf(i) for i in range(5)] == [r.commitment for r in issued]
        assert store.cached_subtree(2, 0) is not None  # leaves 0..3, stored at issuance
        assert store.cached_subtree(2, 1) is None  # leaves 4..7 are not complete
        memory = MemoryNodeStore([r.commitment for r in issued])
        assert merkle_root(store) == merkle_root(memory)
        assert inclusion_proof(store, 4, 5) == inclusion_proof(memory, 4, 5)
        assert consistency_proof(store, 3, 5) == consistency_proof(memory, 3, 5)


def test_db_node_store_stores_what_the_prover_computes_when_the_cache_is_missing(
    session_factory: SessionFactory, signer: ReceiptSigner
) -> None:
    with session_scope(session_factory) as session:
        issued = issue_receipts(session, [create_draft() for _ in range(4)], signer=signer)
    memory = MemoryNodeStore([r.commitment for r in issued])
    with session_scope(session_factory) as session:
        store = DbNodeStore(session)
        store.cache_subtree(1, 0, subtree_root(memory, 0, 2))  # already there: ignored
        assert store.cached_subtree(1, 0) == subtree_root(memory, 0, 2)


class StatementLog:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)


@contextmanager
def recorded(engine: Engine) -> Iterator[StatementLog]:
    log = StatementLog()
    event.listen(engine, "before_cursor_execute", log)
    try:
        yield log
    finally:
        event.remove(engine, "before_cursor_execute", log)


def test_proofs_in_a_5000_receipt_log_read_logarithmically_many_rows(
    engine: Engine, session_factory: SessionFactory, signer: ReceiptSigner
) -> None:
    size = 5000
    ids = []
    for start in range(0, size, 1000):
        with session_scope(session_factory) as session:
            drafts = [create_draft(subject=f"loan:{i}") for i in range(start, start + 1000)]
            ids += [r.id for r in issue_receipts(session, drafts, signer=signer)]
    budget = 4 * math.ceil(math.log2(size))  # the statements of one proof: O(log n), not n

    with recorded(engine) as log, session_scope(session_factory) as session:
        signed = checkpoint(session, signer, datetime.now(UTC))
    assert len(log.statements) <= budget, log.statements

    for index in (0, 1, 2047, 2048, 4095, 4096, 4999):
        with recorded(engine) as log, session_scope(session_factory) as session:
            proof = inclusion_proof_for(session, ids[index])
        reads = [s for s in log.statements if s.lstrip().upper().startswith("SELECT")]
        assert len(log.statements) <= budget, (index, len(log.statements))
        assert not any("INSERT" in s.upper() for s in log.statements)  # a proof never writes
        assert len(reads) <= budget
        assert verify_inclusion(proof.leaf_hash, index, size, proof.path, signed.root)

    with session_scope(session_factory) as session:
        old_root = merkle_root(DbNodeStore(session, size=1234))
    with recorded(engine) as log, session_scope(session_factory) as session:
        consistency = consistency_proof_between(session, 1234, size)
    assert len(log.statements) <= budget
    assert not any("INSERT" in s.upper() for s in log.statements)
    assert verify_consistency(1234, size, old_root, signed.root, consistency.path)
    assert leaf_hash(b"\x00" * 32)  # the core's leaf function is the one issuance used
