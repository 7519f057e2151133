"""The Python verifier and ReceiptAnchor's on-chain verifier give the same answer, every time.

An auditor may check a receipt either way (offline with `credagg verify`, or by calling the
contract), so the two must agree not only on valid proofs but on every malformed one: a proof
one accepts and the other refuses would be a receipt that is valid or not depending on who
looks. Hypothesis draws trees, leaves and one mutation each (flipped bit in a path node, wrong
index, wrong size, wrong leaf, wrong root, truncated or extended path); the contract is asked
with `eth_call` on the session's Anvil devnet.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3

from backend.receipts.commitment import leaf_hash
from backend.receipts.merkle import MemoryNodeStore, inclusion_proof, merkle_root, verify_inclusion

MAX_UINT64 = 2**64 - 1
AGREEMENT = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
MUTATIONS = (
    "none",
    "flip_path_bit",
    "wrong_index",
    "wrong_size",
    "wrong_leaf",
    "wrong_root",
    "truncate_path",
    "extend_path",
)


@pytest.fixture
def anchor(load_fixture: Any, w3: Web3, compiled: Any) -> Any:
    """The ReceiptAnchor of the `two_chain_market` scenario, on the first devnet."""
    market = load_fixture("two_chain_market")
    address = market.address(w3.eth.chain_id, "ReceiptAnchor")
    return w3.eth.contract(address=address, abi=compiled.get("ReceiptAnchor").abi)


def _commitments(size: int, seed: int) -> list[bytes]:
    return [hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(size)]


def _flip(data: bytes, bit: int) -> bytes:
    value = int.from_bytes(data, "big") ^ (1 << (bit % 256))
    return value.to_bytes(32, "big")


@st.composite
def cases(draw: st.DrawFn) -> tuple[bytes, int, int, list[bytes], bytes, str]:
    """(leaf, index, size, path, root, mutation): a valid proof, then at most one change."""
    size = draw(st.integers(1, 300) | st.sampled_from([1, 2, 3, 4, 5, 7, 8, 9, 255, 256, 257]))
    index = draw(st.integers(0, size - 1))
    store = MemoryNodeStore(_commitments(size, draw(st.integers(0, 2**16))))
    leaf = leaf_hash(store.leaf(index))
    path = inclusion_proof(store, index, size)
    root = merkle_root(store, size)
    mutation = draw(st.sampled_from(MUTATIONS))
    if mutation == "flip_path_bit" and path:
        node = draw(st.integers(0, len(path) - 1))
        path[node] = _flip(path[node], draw(st.integers(0, 255)))
    elif mutation == "wrong_index":
        index = draw(
            st.integers(0, size + 4) | st.integers(0, MAX_UINT64).filter(lambda i: i != index)
        )
    elif mutation == "wrong_size":
        size = draw(st.integers(1, 2 * size + 4) | st.integers(1, MAX_UINT64))
    elif mutation == "wrong_leaf":
        leaf = _flip(leaf, draw(st.integers(0, 255)))
    elif mutation == "wrong_root":
        root = _flip(root, draw(st.integers(0, 255)))
    elif mutation == "truncate_path" and path:
        path = path[: draw(st.integers(0, len(path) - 1))]
    elif mutation == "extend_path":
        extra = draw(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=3))
        path = path + extra
    return leaf, index, size, path, root, mutation


@AGREEMENT
@given(case=cases())
def test_python_and_contract_verifiers_agree(
    anchor: Any, case: tuple[bytes, int, int, list[bytes], bytes, str]
) -> None:
    leaf, index, size, path, root, mutation = case
    in_python = verify_inclusion(leaf, index, size, path, root)
    on_chain = anchor.functions.verifyInclusion(leaf, index, size, path, root).call()
    assert in_python == on_chain, (mutation, index, size, len(path))
    if mutation == "none":
        assert in_python, "an unmodified proof must verify"


def test_both_verifiers_accept_every_leaf_of_small_trees(anchor: Any) -> None:
    """Exhaustive for sizes 1..17: every (index, size) and its genuine path."""
    for size in range(1, 18):
        store = MemoryNodeStore(_commitments(size, size))
        root = merkle_root(store, size)
        for index in range(size):
            leaf = leaf_hash(store.leaf(index))
            path = inclusion_proof(store, index, size)
            assert verify_inclusion(leaf, index, size, path, root)
            assert anchor.functions.verifyInclusion(leaf, index, size, path, root).call()
            assert anchor.functions.leafHash(store.leaf(index)).call() == leaf
