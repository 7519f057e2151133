"""The audit log's hash chain, as pure functions: no database, no HTTP, no clock.

Entry hash
    entry_hash = SHA-256("credagg-audit/v1" || 0x00 || JCS(document)), where `document` is

        {"v": 1, "seq": 7, "at": "2026-11-22T22:16:13.123456Z", "actor": "wallet:0x…",
         "action": "POST /v1/credit-requests", "resource": "/v1/credit-requests",
         "request_id": "…" | null, "status": 201, "prev": "0x<64 hex>"}

    JCS is RFC 8785 (`backend.receipts.canonical.canonical_json`), so anyone can rebuild the bytes
    in any language. The domain tag (and its 0x00 terminator) keeps an audit hash from ever
    equalling a receipt commitment or a Merkle node made over the same bytes. `prev` is the
    previous entry's hash (32 zero bytes before seq 1), so every entry commits to the whole
    history before it; `seq` is inside the hash, so swapping two rows' positions breaks both.

Verification
    `ChainVerifier` is fed entries in seq order, one at a time (memory does not grow with the
    log), and reports every `Problem` with the seq it concerns: an edited entry (its hash no
    longer matches its fields), a broken link (its `prev` is not the stored hash of the entry
    before it: that entry was replaced or the two were reordered), a missing seq (deleted, or
    moved), a seq out of order, and a disagreement with a *witness*: a (seq, hash) the log's head
    was seen to have elsewhere, namely the audit-checkpoint receipts in the Merkle log and the
    head row. A chain alone cannot reveal a deleted tail, or a wholesale rewrite that recomputes
    every hash; witnesses can, back to the last one issued.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from backend.receipts.canonical import MAX_SAFE_INTEGER, canonical_json

__all__ = [
    "DOMAIN",
    "GENESIS",
    "HASH_SIZE",
    "SCHEMA_VERSION",
    "ChainVerifier",
    "Entry",
    "EntryFields",
    "Head",
    "Problem",
    "Witness",
    "chain_entries",
    "entry_document",
    "entry_hash",
    "format_at",
    "hex_hash",
    "next_entry",
    "verify_chain",
]

DOMAIN = b"credagg-audit/v1\x00"
HASH_SIZE = 32
GENESIS = bytes(HASH_SIZE)  # the `prev` of seq 1
SCHEMA_VERSION = 1


def format_at(moment: datetime) -> str:
    """The one string form of `at` in the hashed document: UTC, microseconds, 'Z'."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass an aware (UTC) datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hex_hash(digest: bytes) -> str:
    return "0x" + digest.hex()


@dataclass(frozen=True)
class EntryFields:
    """Everything an entry's hash covers."""

    seq: int
    at: datetime
    actor: str
    action: str
    resource: str
    request_id: str | None
    status: int
    prev_hash: bytes


@dataclass(frozen=True)
class Entry(EntryFields):
    """A stored entry: its fields and the hash recorded for them."""

    entry_hash: bytes

    def fields(self) -> EntryFields:
        return EntryFields(
            seq=self.seq,
            at=self.at,
            actor=self.actor,
            action=self.action,
            resource=self.resource,
            request_id=self.request_id,
            status=self.status,
            prev_hash=self.prev_hash,
        )


@dataclass(frozen=True)
class Head:
    """The last entry's (seq, hash); (0, GENESIS) for an empty log."""

    seq: int
    entry_hash: bytes

    @classmethod
    def genesis(cls) -> Head:
        return cls(0, GENESIS)


def entry_document(entry: EntryFields) -> dict[str, Any]:
    """The JSON object whose JCS bytes `entry_hash` covers."""
    if not 1 <= entry.seq <= MAX_SAFE_INTEGER:
        raise ValueError(f"seq must be between 1 and 2**53 - 1, got {entry.seq}")
    if len(entry.prev_hash) != HASH_SIZE:
        raise ValueError(f"prev_hash must be {HASH_SIZE} bytes, got {len(entry.prev_hash)}")
    return {
        "v": SCHEMA_VERSION,
        "seq": entry.seq,
        "at": format_at(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "resource": entry.resource,
        "request_id": entry.request_id,
        "status": entry.status,
        "prev": hex_hash(entry.prev_hash),
    }


def entry_hash(entry: EntryFields) -> bytes:
    """SHA-256(DOMAIN || JCS(entry_document(entry)))."""
    return hashlib.sha256(DOMAIN + canonical_json(entry_document(entry))).digest()


def next_entry(
    head: Head,
    *,
    at: datetime,
    actor: str,
    action: str,
    resource: str,
    request_id: str | None,
    status: int,
) -> Entry:
    """The entry that follows `head`, with its hash."""
    fields = EntryFields(
        seq=head.seq + 1,
        at=at,
        actor=actor,
        action=action,
        resource=resource,
        request_id=request_id,
        status=status,
        prev_hash=head.entry_hash,
    )
    return Entry(**vars(fields), entry_hash=entry_hash(fields))


def chain_entries(records: Iterable[dict[str, Any]], head: Head | None = None) -> list[Entry]:
    """Chain `records` (keyword arguments of `next_entry`) after `head`: tests and examples."""
    current = head or Head.genesis()
    entries: list[Entry] = []
    for record in records:
        entry = next_entry(current, **record)
        entries.append(entry)
        current = Head(entry.seq, entry.entry_hash)
    return entries


@dataclass(frozen=True)
class Witness:
    """A (seq, hash) the head was seen to have outside the entries table, and where."""

    seq: int
    entry_hash: bytes
    source: str  # e.g. "receipt 3f2… (leaf 17)" or "head row"


@dataclass(frozen=True)
class Problem:
    """One failed check, at one seq. `check` is a stable code; `detail` says what and why."""

    seq: int
    check: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "check": self.check, "detail": self.detail}


@dataclass
class ChainVerifier:
    """Checks entries fed in seq order against their hashes, their links and the witnesses.

    Only the previous entry and the witnesses (one per checkpoint receipt: few) are held.
    """

    witnesses: list[Witness] = field(default_factory=list)
    entries_seen: int = 0
    head: Head = field(default_factory=Head.genesis)
    _expected_seq: int = 1
    _pending: list[Witness] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._pending = sorted(self.witnesses, key=lambda w: w.seq, reverse=True)  # pop() = min

    def feed(self, entry: Entry) -> list[Problem]:
        problems: list[Problem] = []
        self.entries_seen += 1
        seq = entry.seq
        linked = True
        if seq > self._expected_seq:
            missing = (
                f"seq {self._expected_seq}"
                if seq == self._expected_seq + 1
                else f"seqs {self._expected_seq}..{seq - 1}"
            )
            problems.append(
                Problem(
                    self._expected_seq,
                    "missing",
                    f"{missing} absent: the log jumps from seq {self._expected_seq - 1} to "
                    f"seq {seq} (entries deleted, or their seq changed)",
                )
            )
            linked = False  # the predecessor is gone: its link cannot be checked
        elif seq < self._expected_seq:
            problems.append(
                Problem(
                    seq,
                    "order",
                    f"seq {seq} comes after seq {self._expected_seq - 1}: entries out of order",
                )
            )
            linked = False
        recomputed = entry_hash(entry.fields())
        if recomputed != entry.entry_hash:
            problems.append(
                Problem(
                    seq,
                    "entry_hash",
                    f"stored hash {hex_hash(entry.entry_hash)} is not the hash of its "
                    f"fields ({hex_hash(recomputed)}): the entry was edited, or moved from "
                    "another seq",
                )
            )
        if linked and entry.prev_hash != self.head.entry_hash:
            problems.append(
                Problem(
                    seq,
                    "prev_hash",
                    f"prev_hash {hex_hash(entry.prev_hash)} is not the stored hash of "
                    f"seq {self.head.seq} ({hex_hash(self.head.entry_hash)}): seq {self.head.seq} "
                    f"or seq {seq} was replaced, or they were reordered",
                )
            )
        problems.extend(self._check_witnesses(up_to=seq, entry=entry))
        self.head = Head(seq, entry.entry_hash)
        self._expected_seq = max(self._expected_seq, seq + 1)
        return problems

    def finish(self) -> list[Problem]:
        """Problems with witnesses beyond the last entry (a deleted tail)."""
        problems: list[Problem] = []
        while self._pending:
            witness = self._pending.pop()
            if witness.seq == 0 and witness.entry_hash == GENESIS:
                continue  # an empty log's head
            problems.append(
                Problem(
                    witness.seq,
                    "witness_missing",
                    f"seq {witness.seq} is named by {witness.source} but the log ends at seq "
                    f"{self.head.seq}: entries were deleted from the tail",
                )
            )
        return problems

    def _check_witnesses(self, *, up_to: int, entry: Entry) -> Iterator[Problem]:
        while self._pending and self._pending[-1].seq <= up_to:
            witness = self._pending.pop()
            if witness.seq < up_to:
                if witness.seq == 0 and witness.entry_hash == GENESIS:
                    continue
                yield Problem(
                    witness.seq,
                    "witness_missing",
                    f"seq {witness.seq} is named by {witness.source} but is not in the log",
                )
            elif witness.entry_hash != entry.entry_hash:
                yield Problem(
                    witness.seq,
                    "witness_mismatch",
                    f"{witness.source} says its hash is "
                    f"{hex_hash(witness.entry_hash)}, the log has {hex_hash(entry.entry_hash)}: "
                    "the log was rewritten up to here",
                )


def verify_chain(entries: Iterable[Entry], witnesses: Iterable[Witness] = ()) -> list[Problem]:
    """Every problem in `entries` (in seq order) against `witnesses`; empty when intact."""
    verifier = ChainVerifier(list(witnesses))
    problems: list[Problem] = []
    for entry in entries:
        problems.extend(verifier.feed(entry))
    problems.extend(verifier.finish())
    return problems
