"""RFC 9162 Merkle math: against the RFC's own recursive definitions, published CT vectors, and
tampering of every kind; plus the subtree cache that keeps proofs from reading the whole log."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.receipts.merkle import (
    EMPTY_ROOT,
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

# ------------------------------------------------------------------ reference (RFC 9162 §2.1)
# Written straight from the definitions of MTH, PATH and PROOF/SUBPROOF, recursion and all, so
# that it shares no code or structure with the iterative, cached prover under test.


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@cache
def ref_mth(d: tuple[bytes, ...]) -> bytes:
    if not d:
        return _sha(b"")
    if len(d) == 1:
        return _sha(b"\x00" + d[0])
    k = _k(len(d))
    return _sha(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: tuple[bytes, ...]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_sides(m: int, n: int) -> list[bool]:
    """For PATH(m, D[n]): whether each sibling sits to the left, i.e. the shape of the path."""
    if n == 1:
        return []
    k = _k(n)
    return [*ref_sides(m, k), False] if m < k else [*ref_sides(m - k, n - k), True]


def ref_proof(m: int, d: tuple[bytes, ...]) -> list[bytes]:
    return ref_subproof(m, d, True)


def ref_subproof(m: int, d: tuple[bytes, ...], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [ref_mth(d)]
    k = _k(len(d))
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def entries(n: int, tag: int = 0) -> tuple[bytes, ...]:
    return tuple(tag.to_bytes(4, "big") + i.to_bytes(4, "big") for i in range(n))


def flip(data: bytes, bit: int) -> bytes:
    bit %= len(data) * 8
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --------------------------------------------------------------------------- known answers


def test_empty_and_single_leaf_roots() -> None:
    assert merkle_root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle_root([b"leaf"]) == hashlib.sha256(b"\x00leaf").digest()


# Test vectors of the Certificate Transparency reference implementation (google/certificate-
# transparency, python ct/crypto/merkle_test.py; the same values appear in Go's and Trillian's
# suites): the leaves, the roots of each prefix, and proofs in those trees.
CT_LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOTS = [
    bytes.fromhex(h)
    for h in [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]
CT_INCLUSION = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 3): ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    (1, 5): [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}
CT_CONSISTENCY = {
    (1, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}


def test_certificate_transparency_vectors() -> None:
    for size, root in enumerate(CT_ROOTS, start=1):
        assert merkle_root(CT_LEAVES, size) == root
    for (index, size), hexes in CT_INCLUSION.items():
        proof = [bytes.fromhex(h) for h in hexes]
        assert inclusion_proof(CT_LEAVES, index, size) == proof
        assert verify_inclusion(hash_leaf(CT_LEAVES[index]), index, size, proof, CT_ROOTS[size - 1])
    for (m, n), hexes in CT_CONSISTENCY.items():
        proof = [bytes.fromhex(h) for h in hexes]
        assert consistency_proof(CT_LEAVES, m, n) == proof
        assert verify_consistency(m, n, CT_ROOTS[m - 1], CT_ROOTS[n - 1], proof)


def test_verifies_a_real_ct_log_proof() -> None:
    """An audit path from a production CT log (index 848049 of 3,630,887), same CT suite:
    the verifier agrees with CT at a scale no generated test reaches."""
    path = [
        bytes.fromhex(h)
        for h in [
            "1a208aeebcd1b39fe2de247ee8db9454e1e93a312d206b87f6ca9cc6ec6f1ddd",
            "0a1b78b383f580856f433c01a5741e160d451c185910027f6cc9f828687a40c4",
            "3d1745789bc63f2da15850de1c12a5bf46ed81e1cc90f086148b1662e79aab3d",
            "9095b61e14d8990acf390905621e62b1714fb8e399fbb71de5510e0aef45affe",
            "0a332b91b8fab564e6afd1dd452449e04619b18accc0ff9aa8393cd4928451f2",
            "2336f0181d264aed6d8f3a6507ca14a8d3b3c3a23791ac263e845d208c1ee330",
            "b4ce56e300590500360c146c6452edbede25d4ed83919278749ee5dbe178e048",
            "933f6ddc848ea562e4f9c5cfb5f176941301dad0c6fdb9d1fbbe34fac1be6966",
            "b95a6222958a86f74c030be27c44f57dbe313e5e7c7f4ffb98bcbd3a03bb52f2",
            "daeeb3ce5923defd0faeb8e0c210b753b85b809445d7d3d3cd537a9aabaa9c45",
            "7fadd0a13e9138a2aa6c3fdec4e2275af233b94812784f66bcca9aa8e989f2bc",
            "1864e6ba3e32878610546539734fb5eeae2529991f130c575c73a7e25a2a7c56",
            "12842d1202b1dc6828a17ab253c02e7ce9409b5192430feba44189f39cc02d66",
            "29af64b16fa3053c13d02ac63aa75b23aa468506e44c3a2315edc85d2dc22b11",
            "b527b99934a0bd9edd154e449b0502e2c499bba783f3bc3dfe23364b6b532009",
            "4584db8ae8e351ace08e01f306378a92bfd43611714814f3d834a2842d69faa8",
            "86a9a41573b0d6e4292f01e93243d6cc65b30f06606fc6fa57390e7e90ed580f",
            "a88b98fbe84d4c6aae8db9d1605dfac059d9f03fe0fcb0d5dff1295dacba09e6",
            "06326dc617a6d1f7021dc536026dbfd5fffc6f7c5531d48ef6ccd1ed1569f2a1",
            "f41fe8fdc3a2e4e8345e30216e7ebecffee26ff266eeced208a6c2a3cf08f960",
            "40cf5bde8abb76983f3e98ba97aa36240402975674e120f234b3448911090f8d",
            "b3222dc8658538079883d980d7fdc2bef9285344ea34338968f736b04aeb387a",
        ]
    ]
    leaf = bytes.fromhex("7a395c866d5ecdb0cccb623e011dbc392cd348d1d1d72776174e127a24b09c78")
    root = bytes.fromhex("78316a05c9bcf14a3a4548f5b854a9adfcd46a4c034401b3ce7eb7ac2f1d0ecb")
    assert verify_inclusion(leaf, 848049, 3630887, path, root)
    assert not verify_inclusion(leaf, 848050, 3630887, path, root)
    assert not verify_inclusion(leaf, 848049, 3630887, path[:-1], root)


# ---------------------------------------------------------------- agreement with the RFC


def test_every_proof_for_small_trees_matches_the_rfc_definitions() -> None:
    """Exhaustive for sizes 1..64: every index, every 1 <= m <= n."""
    for n in range(1, 65):
        d = entries(n)
        store = MemoryNodeStore(d)
        root = ref_mth(d)
        assert merkle_root(store) == root
        for index in range(n):
            proof = inclusion_proof(store, index, n)
            assert proof == ref_path(index, d)
            assert verify_inclusion(hash_leaf(d[index]), index, n, proof, root)
        for m in range(1, n + 1):
            proof = consistency_proof(store, m, n)
            assert proof == ref_proof(m, d)
            assert verify_consistency(m, n, ref_mth(d[:m]), root, proof)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 300), st.integers(0, 2**32 - 1))
def test_every_inclusion_proof_verifies(n: int, tag: int) -> None:
    d = entries(n, tag)
    store = MemoryNodeStore(d)
    root = ref_mth(d)
    for index in range(n):
        proof = inclusion_proof(store, index, n)
        assert proof == ref_path(index, d)
        assert verify_inclusion(hash_leaf(d[index]), index, n, proof, root)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 300), st.integers(0, 2**32 - 1))
def test_every_consistency_proof_verifies(n: int, tag: int) -> None:
    d = entries(n, tag)
    store = MemoryNodeStore(d)
    for m in range(1, n + 1):
        proof = consistency_proof(store, m, n)
        assert proof == ref_proof(m, d)
        assert verify_consistency(m, n, ref_mth(d[:m]), ref_mth(d), proof)


# ------------------------------------------------------------------------------- tampering


@st.composite
def tree_and_index(draw: st.DrawFn) -> tuple[tuple[bytes, ...], int]:
    n = draw(st.integers(1, 300))
    return entries(n, draw(st.integers(0, 2**32 - 1))), draw(st.integers(0, n - 1))


@settings(max_examples=200, deadline=None)
@given(tree_and_index(), st.integers(0, 2**16))
def test_any_flipped_bit_fails_inclusion(case: tuple[tuple[bytes, ...], int], bit: int) -> None:
    d, index = case
    n, leaf, root = len(d), hash_leaf(d[index]), ref_mth(d)
    proof = inclusion_proof(d, index, n)
    assert not verify_inclusion(flip(leaf, bit), index, n, proof, root)
    assert not verify_inclusion(leaf, index, n, proof, flip(root, bit))
    for position in range(len(proof)):
        bad = [*proof[:position], flip(proof[position], bit), *proof[position + 1 :]]
        assert not verify_inclusion(leaf, index, n, bad, root)
    assert not verify_inclusion(leaf, index, n, [*proof, root], root)
    if proof:
        assert not verify_inclusion(leaf, index, n, proof[:-1], root)


@settings(max_examples=200, deadline=None)
@given(tree_and_index(), st.integers(0, 300), st.integers(1, 300))
def test_wrong_index_or_size_fails_inclusion(
    case: tuple[tuple[bytes, ...], int], other_index: int, other_size: int
) -> None:
    """A proof proves one position only. Against the honest root of another size it fails
    unless it is, hash for hash, that tree's own proof. With the same root and another size it
    passes exactly when both sizes give the path the same shape: the proof cannot bind the size,
    the signed checkpoint does (it signs size and root together, see test_signing)."""
    d, index = case
    n, leaf, root = len(d), hash_leaf(d[index]), ref_mth(d)
    proof = inclusion_proof(d, index, n)
    if other_index != index:
        assert not verify_inclusion(leaf, other_index, n, proof, root)
    if other_size != n:
        wider = entries(max(n, other_size), int.from_bytes(d[0][:4], "big"))
        honest = ref_mth(wider[:other_size])
        expected = index < other_size and proof == ref_path(index, wider[:other_size])
        assert verify_inclusion(leaf, index, other_size, proof, honest) == expected
        same_shape = index < other_size and ref_sides(index, n) == ref_sides(index, other_size)
        assert verify_inclusion(leaf, index, other_size, proof, root) == same_shape


@st.composite
def tree_and_prefix(draw: st.DrawFn) -> tuple[tuple[bytes, ...], int]:
    n = draw(st.integers(1, 300))
    return entries(n, draw(st.integers(0, 2**32 - 1))), draw(st.integers(1, n))


@settings(max_examples=200, deadline=None)
@given(tree_and_prefix(), st.integers(0, 2**16))
def test_any_flipped_bit_fails_consistency(case: tuple[tuple[bytes, ...], int], bit: int) -> None:
    d, m = case
    n, old, new = len(d), ref_mth(d[:m]), ref_mth(d)
    proof = consistency_proof(d, m, n)
    assert not verify_consistency(m, n, flip(old, bit), new, proof)
    assert not verify_consistency(m, n, old, flip(new, bit), proof)
    for position in range(len(proof)):
        bad = [*proof[:position], flip(proof[position], bit), *proof[position + 1 :]]
        assert not verify_consistency(m, n, old, new, bad)
    assert not verify_consistency(m, n, old, new, [*proof, new])
    if proof:
        assert not verify_consistency(m, n, old, new, proof[:-1])


@settings(max_examples=200, deadline=None)
@given(tree_and_prefix(), st.integers(1, 300), st.integers(1, 300))
def test_wrong_sizes_fail_consistency(
    case: tuple[tuple[bytes, ...], int], other_m: int, other_n: int
) -> None:
    """Against the honest roots of the claimed sizes, only that pair's own proof verifies."""
    d, m = case
    n = len(d)
    proof = consistency_proof(d, m, n)
    wider = entries(max(n, other_m, other_n), int.from_bytes(d[0][:4], "big"))
    for mm, nn in ((other_m, n), (m, other_n), (other_m, other_n)):
        if (mm, nn) == (m, n):
            continue
        honest_old, honest_new = ref_mth(wider[:mm]), ref_mth(wider[:nn])
        expected = mm <= nn and proof == ref_proof(mm, wider[:nn])
        assert verify_consistency(mm, nn, honest_old, honest_new, proof) == expected


def test_a_proof_too_short_for_the_claimed_size_fails() -> None:
    """RFC 9162's final `sn == 0` check: a proof for a smaller tree, offered with that smaller
    tree's root as the root of a bigger one, must not pass."""
    d = entries(8)
    assert not verify_inclusion(hash_leaf(d[0]), 0, 8, inclusion_proof(d, 0, 4), ref_mth(d[:4]))
    proof = consistency_proof(d, 1, 4)
    assert verify_consistency(1, 4, ref_mth(d[:1]), ref_mth(d[:4]), proof)
    assert not verify_consistency(1, 8, ref_mth(d[:1]), ref_mth(d[:4]), proof)


GARBAGE: list[object] = [None, -1, True, 1.0, "00" * 32, b"\x00" * 31, b"\x00" * 33, [b"x"], {}]


def test_verifiers_return_false_on_garbage_and_never_raise() -> None:
    d = entries(5)
    leaf, root, proof = hash_leaf(d[1]), ref_mth(d), inclusion_proof(d, 1, 5)
    good = (leaf, 1, 5, proof, root)
    assert verify_inclusion(*good)
    for position in range(5):
        for junk in GARBAGE:
            args = list(good)
            args[position] = junk
            assert verify_inclusion(*args) is False  # type: ignore[arg-type]
    assert verify_inclusion(leaf, 1, 5, [*proof[:1], "ab" * 32], root) is False  # type: ignore[list-item]
    old, cproof = ref_mth(d[:2]), consistency_proof(d, 2, 5)
    good_c = (2, 5, old, root, cproof)
    assert verify_consistency(*good_c)
    for position in range(5):
        for junk in GARBAGE:
            args = list(good_c)
            args[position] = junk
            assert verify_consistency(*args) is False  # type: ignore[arg-type]
    assert verify_consistency(0, 5, EMPTY_ROOT, root, []) is False
    assert verify_consistency(5, 2, root, old, cproof) is False
    assert verify_consistency(3, 3, root, root, []) is True
    assert verify_consistency(3, 3, root, root, [root]) is False
    assert verify_consistency(3, 3, old, root, []) is False


def test_generation_rejects_impossible_requests() -> None:
    d = entries(4)
    for args in ((d, -1, 4), (d, 4, 4), (d, 0, 5), (d, 0, 0)):
        with pytest.raises(ValueError):
            inclusion_proof(*args)
    for args in ((d, 0, 4), (d, 3, 2), (d, 1, 5)):
        with pytest.raises(ValueError):
            consistency_proof(*args)
    with pytest.raises(ValueError):
        merkle_root(d, 5)
    with pytest.raises(ValueError):
        subtree_root(MemoryNodeStore(d), 2, 2)
    with pytest.raises(TypeError):
        merkle_root(b"not a list of entries")  # type: ignore[arg-type]


# ------------------------------------------------------------------- the cache at work


class CountingStore(MemoryNodeStore):
    """Counts leaf reads, the cost a database-backed store would pay per proof."""

    def __init__(self, entries: Sequence[bytes] = ()) -> None:
        super().__init__(entries)
        self.reads = 0

    def leaf(self, index: int) -> bytes:
        self.reads += 1
        return super().leaf(index)


def test_warm_proofs_read_a_logarithmic_number_of_leaves() -> None:
    store = CountingStore(entries(5000))
    assert isinstance(store, NodeStore)
    root = merkle_root(store)
    assert store.reads == 5000
    for index in (0, 1, 2047, 2048, 4095, 4999):
        store.reads = 0
        proof = inclusion_proof(store, index, 5000)
        assert store.reads <= 2  # a sibling leaf at most; never the whole log
        assert verify_inclusion(hash_leaf(store.leaf(index)), index, 5000, proof, root)
    store.reads = 0
    consistency_proof(store, 1234, 5000)
    assert store.reads <= 2
    store.append(b"new")
    store.reads = 0
    merkle_root(store)
    assert store.reads == 1  # the 4096-, 512-, 256-, 128-, 8-leaf subtrees come from the cache


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=12), st.data())
def test_cache_stays_correct_while_the_log_grows(batches: list[int], data: st.DataObject) -> None:
    """Appends interleaved with proofs at old and new sizes: no cached hash ever goes stale."""
    store, log = MemoryNodeStore(), list[bytes]()
    for batch in batches:
        for _ in range(batch):
            entry = len(log).to_bytes(4, "big")
            log.append(entry)
            assert store.append(entry) == len(log) - 1
        n = data.draw(st.integers(1, len(log)))
        m = data.draw(st.integers(1, n))
        index = data.draw(st.integers(0, n - 1))
        assert merkle_root(store, n) == ref_mth(tuple(log[:n]))
        assert inclusion_proof(store, index, n) == ref_path(index, tuple(log[:n]))
        assert consistency_proof(store, m, n) == ref_proof(m, tuple(log[:n]))
        assert subtree_root(store, index, n) == ref_mth(tuple(log[index:n]))
