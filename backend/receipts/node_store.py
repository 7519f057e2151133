"""The Merkle log as stored in the database: a `NodeStore` for the core prover, and the
arithmetic that extends the stored subtree cache when leaves are appended.

Issuance stores every complete, aligned subtree hash the moment it becomes complete (see
`new_complete_nodes`), so a proof reads one row per subtree it needs, O(log n) rows, and a read
never has to write. `DbNodeStore.cache_subtree` still stores what the prover computes, for a log
whose cache was never filled (none is, today).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from sqlalchemy.orm import Session

from backend.receipts.merkle import NodeStore, hash_children
from backend.receipts.repository import (
    MerkleLogStateRepository,
    MerkleNodeRepository,
    NodeKey,
    ReceiptRepository,
)

__all__ = ["DbNodeStore", "frontier_keys", "new_complete_nodes", "reads_of"]


class DbNodeStore:
    """The core's `NodeStore` over `receipts` (entries) and `merkle_nodes` (subtree hashes).

    The size is read once, when first asked, so every proof made through one store describes
    one tree even while other transactions append (stored nodes never change).
    """

    def __init__(self, session: Session, *, size: int | None = None) -> None:
        self._receipts = ReceiptRepository(session)
        self._nodes = MerkleNodeRepository(session)
        self._state = MerkleLogStateRepository(session)
        self._size = size
        self._memo: dict[NodeKey, bytes] = {}
        self._leaves: dict[int, bytes] = {}

    @property
    def size(self) -> int:
        if self._size is None:
            self._size = self._state.size()
        return self._size

    def preload(self, prove: Callable[[NodeStore], object]) -> None:
        """Fetch, in two queries, every row `prove(store)` will read (instead of one query per
        row, ~2 log n of them). The keys come from a dry run of `prove` on a store that records
        what it is asked; rows not found are simply read (or computed) later as usual."""
        leaves, nodes = reads_of(prove, self.size)
        self._memo.update(self._nodes.get_hashes(key for key in nodes if key not in self._memo))
        self._leaves.update(self._receipts.commitments_at(leaves - self._leaves.keys()))

    def leaf(self, index: int) -> bytes:
        """The commitment at `index` (the core applies the 0x00 leaf prefix itself)."""
        if not 0 <= index < self.size:
            raise IndexError(f"no leaf {index} in a log of {self.size}")
        if index in self._leaves:
            return self._leaves[index]
        commitment = self._receipts.commitment_at(index)
        if commitment is None:
            raise LookupError(f"log of size {self.size} has no receipt at leaf {index}")
        return commitment

    def cached_subtree(self, level: int, index: int) -> bytes | None:
        key = (level, index)
        if key not in self._memo:
            digest = self._nodes.get_hash(level, index)
            if digest is None:
                return None
            self._memo[key] = digest
        return self._memo[key]

    def cache_subtree(self, level: int, index: int, digest: bytes) -> None:
        self._memo[(level, index)] = digest
        self._nodes.insert_if_absent(level, index, digest)


class _ReadRecorder:
    """A `NodeStore` that answers every read with a placeholder and remembers what was read."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.leaves: set[int] = set()
        self.nodes: set[NodeKey] = set()

    def leaf(self, index: int) -> bytes:
        self.leaves.add(index)
        return bytes(32)

    def cached_subtree(self, level: int, index: int) -> bytes | None:
        self.nodes.add((level, index))
        return bytes(32)

    def cache_subtree(self, level: int, index: int, digest: bytes) -> None:
        """Nothing to cache: every subtree already 'hits'."""


def reads_of(prove: Callable[[NodeStore], object], size: int) -> tuple[set[int], set[NodeKey]]:
    """The leaves and stored subtrees `prove` reads from a fully cached log of `size` leaves."""
    recorder = _ReadRecorder(size)
    prove(recorder)
    return recorder.leaves, recorder.nodes


def frontier_keys(old_size: int, new_size: int) -> list[NodeKey]:
    """The stored nodes needed to extend the cache from `old_size` to `new_size` leaves.

    At each level, a new parent may have a left child that was complete before the append: at
    most one such node per level, so O(log n) rows, fetched in one query.
    """
    keys: list[NodeKey] = []
    level = 0
    while (1 << (level + 1)) <= new_size:
        first_new = old_size >> level
        if first_new & 1 and (new_size >> (level + 1)) > (old_size >> (level + 1)):
            keys.append((level, first_new - 1))
        level += 1
    return keys


def new_complete_nodes(
    old_size: int, leaf_hashes: Sequence[bytes], frontier: Mapping[NodeKey, bytes]
) -> dict[NodeKey, bytes]:
    """Every subtree that becomes complete when `leaf_hashes` are appended at `old_size`.

    Level 0 are the leaf hashes themselves. `frontier` holds the nodes `frontier_keys` named.
    """
    new_size = old_size + len(leaf_hashes)
    current = {old_size + offset: digest for offset, digest in enumerate(leaf_hashes)}
    nodes = {(0, index): digest for index, digest in current.items()}
    level = 0
    while (new_size >> (level + 1)) > (old_size >> (level + 1)):
        parents: dict[int, bytes] = {}
        for parent in range(old_size >> (level + 1), new_size >> (level + 1)):
            left_index = 2 * parent
            left = current.get(left_index)
            if left is None:
                left = frontier[(level, left_index)]
            parents[parent] = hash_children(left, current[left_index + 1])
        level += 1
        current = parents
        nodes.update(((level, index), digest) for index, digest in parents.items())
    return nodes
