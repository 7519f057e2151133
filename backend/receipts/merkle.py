"""RFC 9162 (Certificate Transparency v2) Merkle tree math over SHA-256.

Two halves that share nothing but the hash functions:

- the prover (`subtree_root`, `merkle_root`, `inclusion_proof`, `consistency_proof`) reads leaves
  through a `NodeStore`, so proofs come from stored subtree hashes, not from the whole log;
- the verifier (`verify_inclusion`, `verify_consistency`) follows RFC 9162 §2.1.3.2 and §2.1.4.2
  step by step. It never raises on bad input, so an auditor's tool can report "invalid" for any
  bundle, however malformed, instead of crashing. Keeping it apart from the prover means a bug
  in one cannot silently agree with the same bug in the other.

Only complete, aligned power-of-two subtrees are cached: in an append-only log they never change
once full, so their hashes can be stored forever and shared by every later tree size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MemoryNodeStore",
    "NodeStore",
    "consistency_proof",
    "hash_children",
    "hash_leaf",
    "inclusion_proof",
    "merkle_root",
    "subtree_root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def hash_leaf(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry): the prefix keeps a leaf from passing for an inner node."""
    return hashlib.sha256(LEAF_PREFIX + entry).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


# --------------------------------------------------------------------------------------- prover


@runtime_checkable
class NodeStore(Protocol):
    """Where the prover reads the log: its entries and a cache of full-subtree hashes.

    `leaf(index)` is the entry itself (a receipt commitment), not its leaf hash, so a store
    holds exactly what was committed and the 0x00 prefix is applied in one place.
    `cached_subtree(level, index)` is the hash of leaves [index * 2**level, (index + 1) * 2**level)
    or None; the prover only ever stores complete subtrees through `cache_subtree`.
    """

    @property
    def size(self) -> int: ...

    def leaf(self, index: int) -> bytes: ...

    def cached_subtree(self, level: int, index: int) -> bytes | None: ...

    def cache_subtree(self, level: int, index: int, digest: bytes) -> None: ...


class MemoryNodeStore:
    """A `NodeStore` in a list and a dict: for tests, tools and the verifier's own checks."""

    def __init__(self, entries: Sequence[bytes] = ()) -> None:
        self._entries: list[bytes] = list(entries)
        self._subtrees: dict[tuple[int, int], bytes] = {}

    @property
    def size(self) -> int:
        return len(self._entries)

    def append(self, entry: bytes) -> int:
        """Add an entry and return its index, which never changes afterwards."""
        self._entries.append(entry)
        return len(self._entries) - 1

    def leaf(self, index: int) -> bytes:
        return self._entries[index]

    def cached_subtree(self, level: int, index: int) -> bytes | None:
        return self._subtrees.get((level, index))

    def cache_subtree(self, level: int, index: int, digest: bytes) -> None:
        self._subtrees[(level, index)] = digest


def subtree_root(store: NodeStore, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for 0 <= start < end <= store.size, from cached full subtrees."""
    if not 0 <= start < end <= store.size:
        raise ValueError(f"no subtree [{start}, {end}) in a log of {store.size} entries")
    return _subtree(store, start, end)


def merkle_root(source: NodeStore | Sequence[bytes], size: int | None = None) -> bytes:
    """MTH of the first `size` entries (all of them by default); the empty tree is SHA-256("")."""
    store = _as_store(source)
    size = store.size if size is None else size
    if not 0 <= size <= store.size:
        raise ValueError(f"tree size {size} is outside 0..{store.size}")
    return EMPTY_ROOT if size == 0 else _subtree(store, 0, size)


def inclusion_proof(source: NodeStore | Sequence[bytes], index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) of RFC 9162 §2.1.3.1, leaf-side sibling first."""
    store = _as_store(source)
    if not 0 <= index < size <= store.size:
        raise ValueError(f"no leaf {index} in a tree of size {size} (log has {store.size})")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        split = start + _largest_power_of_two_below(end - start)
        if index < split:
            path.append(_subtree(store, split, end))
            end = split
        else:
            path.append(_subtree(store, start, split))
            start = split
    path.reverse()
    return path


def consistency_proof(source: NodeStore | Sequence[bytes], m: int, n: int) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1: shows the tree of size m is a prefix of size n."""
    store = _as_store(source)
    if not 0 < m <= n <= store.size:
        raise ValueError(f"no consistency proof from {m} to {n} (log has {store.size})")
    proof: list[bytes] = []
    start, end, complete = 0, n, True  # SUBPROOF(m - start, D[start:end], complete)
    while m - start != end - start:
        split = start + _largest_power_of_two_below(end - start)
        if m <= split:
            proof.append(_subtree(store, split, end))
            end = split
        else:
            proof.append(_subtree(store, start, split))
            start, complete = split, False
    if not complete:
        proof.append(_subtree(store, start, end))
    proof.reverse()
    return proof


def _subtree(store: NodeStore, start: int, end: int) -> bytes:
    width = end - start
    if width == 1:
        return hash_leaf(store.leaf(start))
    if width & (width - 1) == 0 and start % width == 0:
        level, index = width.bit_length() - 1, start // width
        cached = store.cached_subtree(level, index)
        if cached is None:
            half = start + width // 2
            cached = hash_children(_subtree(store, start, half), _subtree(store, half, end))
            store.cache_subtree(level, index, cached)
        return cached
    split = start + _largest_power_of_two_below(width)
    return hash_children(_subtree(store, start, split), _subtree(store, split, end))


def _largest_power_of_two_below(n: int) -> int:
    """k of RFC 9162 §2.1.1: the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _as_store(source: NodeStore | Sequence[bytes]) -> NodeStore:
    if isinstance(source, NodeStore):
        return source
    if isinstance(source, bytes | str):
        raise TypeError("pass a sequence of entries, not a single bytes or str value")
    return MemoryNodeStore(source)


# ------------------------------------------------------------------------------------- verifier


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: whether `leaf_hash` is leaf `index` of the tree of `size` with `root`.

    The proof does not bind `size` on its own; the signed checkpoint binding (size, root) does.
    """
    if not (_is_int(index) and _is_int(size) and 0 <= index < size):
        return False
    if not (_is_hash(leaf_hash) and _is_hash(root) and _are_hashes(proof)):
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hash_children(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    m: int, n: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: whether the tree of size `n` with `new_root` extends size `m`'s."""
    if not (_is_int(m) and _is_int(n) and 0 < m <= n):
        return False
    if not (_is_hash(old_root) and _is_hash(new_root) and _are_hashes(proof)):
        return False
    if m == n:
        return len(proof) == 0 and old_root == new_root
    path = list(proof)
    if not path:
        return False
    if m & (m - 1) == 0:
        path.insert(0, old_root)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = hash_children(c, fr), hash_children(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = hash_children(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _are_hashes(values: object) -> bool:
    return isinstance(values, list | tuple) and all(_is_hash(value) for value in values)
