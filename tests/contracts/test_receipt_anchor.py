"""ReceiptAnchor: anchoring rules, gas, and the RFC 9162 verifier against a Python reference."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.contracts._support import ANCHORER_ROLE, PAUSER_ROLE, Chain, System

ANCHOR_GAS_TARGET = 80_000
HYPOTHESIS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# --- RFC 9162 reference (section 2.1), written from the RFC's recursive definitions ----------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf_hash(commitment: bytes) -> bytes:
    return sha256(b"\x00" + commitment)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def _split(n: int) -> int:
    """Largest power of two strictly smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    """MTH over already-hashed leaves (RFC 9162 2.1.1)."""
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def audit_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) (RFC 9162 2.1.3.1)."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return [*audit_path(m, leaves[:k]), mth(leaves[k:])]
    return [*audit_path(m - k, leaves[k:]), mth(leaves[:k])]


def reference_verify(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2, used only to classify mutated inputs the recursion cannot."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def commitments(n: int, seed: int) -> list[bytes]:
    return [sha256(f"receipt-{seed}-{i}".encode()) for i in range(n)]


def flip_bit(value: bytes, bit: int) -> bytes:
    data = bytearray(value)
    data[bit // 8] ^= 1 << (bit % 8)
    return bytes(data)


# --- anchoring -----------------------------------------------------------------------------


def test_anchor_stores_root_block_and_links_previous(system: System, chain: Chain) -> None:
    anchor = system.anchor
    root1, root2 = sha256(b"r1"), sha256(b"r2")
    r1 = chain.tx(anchor.functions.anchor(10, root1), system.relayer)
    r2 = chain.tx(anchor.functions.anchor(25, root2), system.relayer)

    assert anchor.functions.rootAt(10).call() == root1
    assert anchor.functions.rootAt(25).call() == root2
    assert anchor.functions.rootAt(11).call() == b"\x00" * 32
    assert anchor.functions.anchorOf(10).call() == [root1, r1["blockNumber"], 0]
    assert anchor.functions.anchorOf(25).call() == [root2, r2["blockNumber"], 10]
    assert anchor.functions.latest().call() == [25, root2, r2["blockNumber"]]
    assert anchor.functions.anchorCount().call() == 2

    (first,) = chain.events(anchor, "Anchored", r1)
    assert dict(first["args"]) == {
        "treeSize": 10,
        "root": root1,
        "prevSize": 0,
        "prevRoot": b"\x00" * 32,
    }
    (second,) = chain.events(anchor, "Anchored", r2)
    assert dict(second["args"]) == {
        "treeSize": 25,
        "root": root2,
        "prevSize": 10,
        "prevRoot": root1,
    }


def test_latest_is_zero_before_first_anchor(system: System) -> None:
    assert system.anchor.functions.latest().call() == [0, b"\x00" * 32, 0]
    assert system.anchor.functions.anchorCount().call() == 0


def test_anchor_size_must_strictly_grow(system: System, chain: Chain) -> None:
    anchor = system.anchor
    chain.tx(anchor.functions.anchor(10, sha256(b"a")), system.relayer)
    chain.expect_revert(
        anchor.functions.anchor(10, sha256(b"b")), system.relayer, "TreeSizeNotIncreasing", 10, 10
    )
    chain.expect_revert(
        anchor.functions.anchor(9, sha256(b"b")), system.relayer, "TreeSizeNotIncreasing", 9, 10
    )


def test_anchor_size_zero_and_zero_root_rejected(system: System, chain: Chain) -> None:
    anchor = system.anchor
    chain.expect_revert(
        anchor.functions.anchor(0, sha256(b"a")), system.relayer, "TreeSizeNotIncreasing", 0, 0
    )
    chain.expect_revert(anchor.functions.anchor(1, b"\x00" * 32), system.relayer, "ZeroRoot")


def test_anchor_requires_anchorer_role(system: System, chain: Chain) -> None:
    chain.expect_revert(
        system.anchor.functions.anchor(1, sha256(b"a")),
        system.outsider,
        "AccessControlUnauthorizedAccount",
        system.outsider.address,
        ANCHORER_ROLE,
    )


def test_anchor_blocked_while_paused(system: System, chain: Chain) -> None:
    anchor = system.anchor
    chain.tx(anchor.functions.pause(), system.pauser)
    chain.expect_revert(anchor.functions.anchor(1, sha256(b"a")), system.relayer, "EnforcedPause")
    chain.tx(anchor.functions.unpause(), system.admin)
    chain.tx(anchor.functions.anchor(1, sha256(b"a")), system.relayer)


def test_pause_role_and_unpause_admin_only(system: System, chain: Chain) -> None:
    anchor = system.anchor
    chain.expect_revert(
        anchor.functions.pause(),
        system.relayer,
        "AccessControlUnauthorizedAccount",
        system.relayer.address,
        PAUSER_ROLE,
    )
    chain.tx(anchor.functions.pause(), system.pauser)
    chain.expect_revert(anchor.functions.pause(), system.pauser, "EnforcedPause")
    chain.expect_revert(
        anchor.functions.unpause(),
        system.pauser,
        "AccessControlUnauthorizedAccount",
        system.pauser.address,
        b"\x00" * 32,
    )
    chain.tx(anchor.functions.unpause(), system.admin)
    chain.expect_revert(anchor.functions.unpause(), system.admin, "ExpectedPause")


def test_anchor_of_unknown_size_reverts(system: System, chain: Chain) -> None:
    name, args = chain.call_revert_of(system.anchor.functions.anchorOf(7))
    assert (name, args) == ("UnknownTreeSize", (7,))


@pytest.mark.parametrize("sizes", [[1, 2, 3, 4, 5, 6], [1_000, 2_000_000, 2**40, 2**63, 2**64 - 1]])
def test_anchor_gas_in_steady_state_within_target(
    system: System, chain: Chain, sizes: list[int]
) -> None:
    """Steady state = every anchor after the first (the first also initialises the head slot)."""
    used = []
    for i, size in enumerate(sizes):
        # Worst case for calldata: a root with no zero bytes.
        root = bytes((b % 255) + 1 for b in sha256(f"root-{i}".encode()))
        receipt = chain.tx(system.anchor.functions.anchor(size, root), system.relayer)
        used.append(receipt["gasUsed"])
    steady = used[1:]
    assert max(steady) <= ANCHOR_GAS_TARGET, f"anchor() gas {used}"


# --- verifier ------------------------------------------------------------------------------


def test_leaf_hash_matches_rfc9162(system: System) -> None:
    c = sha256(b"commitment")
    assert system.anchor.functions.leafHash(c).call() == leaf_hash(c)


@HYPOTHESIS
@given(data=st.data(), size=st.integers(min_value=1, max_value=200), seed=st.integers(0, 2**32))
def test_verify_inclusion_matches_reference(
    system: System, data: st.DataObject, size: int, seed: int
) -> None:
    verify = system.anchor.functions.verifyInclusion
    leaves = [leaf_hash(c) for c in commitments(size, seed)]
    root = mth(leaves)
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    proof = audit_path(index, leaves)
    assert reference_verify(leaves[index], index, size, proof, root)
    assert verify(leaves[index], index, size, proof, root).call() is True

    # Any flipped bit in the leaf, a proof element or the root breaks the proof.
    bit = data.draw(st.integers(0, 255), label="bit")
    assert verify(flip_bit(leaves[index], bit), index, size, proof, root).call() is False
    assert verify(leaves[index], index, size, proof, flip_bit(root, bit)).call() is False
    if proof:
        j = data.draw(st.integers(0, len(proof) - 1), label="proof element")
        bad = [*proof[:j], flip_bit(proof[j], bit), *proof[j + 1 :]]
        assert verify(leaves[index], index, size, bad, root).call() is False
        # A truncated path never reaches the root.
        assert verify(leaves[index], index, size, proof[:-1], root).call() is False
    # An extra element is rejected (sn reaches 0 first).
    assert verify(leaves[index], index, size, [*proof, root], root).call() is False

    # Another leaf's hash at this index fails; a wrong index or size agrees with the RFC.
    if size > 1:
        other = (index + 1) % size
        assert verify(leaves[other], index, size, proof, root).call() is False
        assert verify(leaves[index], other, size, proof, root).call() == reference_verify(
            leaves[index], other, size, proof, root
        )
    wrong_size = data.draw(st.integers(1, 256), label="wrong size")
    assert verify(leaves[index], index, wrong_size, proof, root).call() == reference_verify(
        leaves[index], index, wrong_size, proof, root
    )


def test_verify_inclusion_index_out_of_range_is_false(system: System) -> None:
    leaves = [leaf_hash(c) for c in commitments(4, 1)]
    root = mth(leaves)
    proof = audit_path(3, leaves)
    verify = system.anchor.functions.verifyInclusion
    assert verify(leaves[3], 3, 4, proof, root).call() is True
    assert verify(leaves[3], 4, 4, proof, root).call() is False
    assert verify(leaves[3], 3, 0, proof, root).call() is False


def test_single_leaf_tree_has_empty_proof(system: System) -> None:
    leaf = leaf_hash(sha256(b"only"))
    verify = system.anchor.functions.verifyInclusion
    assert verify(leaf, 0, 1, [], leaf).call() is True
    assert verify(leaf, 0, 1, [leaf], leaf).call() is False


def test_verify_receipt_uses_anchored_root(system: System, chain: Chain) -> None:
    receipts = commitments(13, 99)
    leaves = [leaf_hash(c) for c in receipts]
    chain.tx(system.anchor.functions.anchor(8, mth(leaves[:8])), system.relayer)
    chain.tx(system.anchor.functions.anchor(13, mth(leaves)), system.relayer)
    verify = system.anchor.functions.verifyReceipt
    for i, c in enumerate(receipts):
        assert verify(c, i, 13, audit_path(i, leaves)).call() is True
        if i < 8:
            assert verify(c, i, 8, audit_path(i, leaves[:8])).call() is True
            # A path for size 13 does not verify against the size-8 root.
            assert verify(c, i, 8, audit_path(i, leaves)).call() is False
    # The leaf hash instead of the commitment is not a receipt.
    assert verify(leaves[0], 0, 13, audit_path(0, leaves)).call() is False
    name, args = chain.call_revert_of(verify(receipts[0], 0, 12, audit_path(0, leaves[:12])))
    assert (name, args) == ("UnknownTreeSize", (12,))
