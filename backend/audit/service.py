"""Appending to the audit log, checkpointing its head, verifying it (no HTTP, no commit).

Appending locks the head row, builds the next entry from it, inserts the entry and moves the
head, all in the caller's transaction: callers take the lock as late as possible (just before
their commit), so concurrent requests queue on it only for the length of a commit.

The head goes into the receipt log as an `audit_checkpoint` receipt (tenant "system", subject
"audit-log", payload {"seq", "head"}) from the periodic `audit.checkpoint` task. Once receipted,
and anchored on-chain with the rest of the Merkle log, a head cannot be unsaid: `verify_log`
checks every entry against its hash, its predecessor and every receipted head, so deleting the
tail up to the last checkpoint, or rewriting the chain before it, shows up.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from backend.audit.chain import (
    ChainVerifier,
    Entry,
    Head,
    Problem,
    Witness,
    hex_hash,
    next_entry,
)
from backend.audit.repository import (
    CHECKPOINT_SUBJECT,
    AuditCheckpointReceiptRepository,
    AuditEntryRepository,
    AuditHeadRepository,
)
from backend.db import SessionFactory, session_scope
from backend.kit.columns import utcnow
from backend.receipts.commitment import commitment, leaf_hash
from backend.receipts.models import Receipt, ReceiptKind
from backend.receipts.repository import MerkleNodeRepository
from backend.receipts.service import IssuedReceipt, ReceiptDraft, issue_receipt, receipt_document
from backend.receipts.signing import ReceiptSigner

__all__ = [
    "AuditRecord",
    "VerificationReport",
    "append",
    "checkpoint_head",
    "current_head",
    "iter_entries",
    "verify_log",
]

DEFAULT_PAGE_SIZE = 1000
MAX_PROBLEMS_LISTED = 1000


@dataclass(frozen=True)
class AuditRecord:
    """What one request contributes to its entry; seq, time and hashes come from the log."""

    actor: str
    action: str
    resource: str
    request_id: str | None
    status: int


def append(session: Session, record: AuditRecord) -> Entry:
    """Append `record` after the current head; flush, never commit.

    The head row stays locked until the caller's transaction ends. `at` is read under the
    lock, so entry times never run backwards along seq.
    """
    heads = AuditHeadRepository(session)
    head = heads.lock()
    entry = next_entry(
        head,
        at=utcnow(),
        actor=record.actor,
        action=record.action,
        resource=record.resource,
        request_id=record.request_id,
        status=record.status,
    )
    AuditEntryRepository(session).insert(entry)
    heads.set(Head(entry.seq, entry.entry_hash))
    return entry


def current_head(session: Session) -> Head:
    return AuditHeadRepository(session).read()


# --------------------------------------------------------------------------------- checkpoint


def checkpoint_payload(head: Head) -> dict[str, Any]:
    return {"seq": head.seq, "head": hex_hash(head.entry_hash)}


def checkpoint_head(
    session: Session, *, signer: ReceiptSigner, max_inclusion_delay: timedelta | None = None
) -> IssuedReceipt | None:
    """Issue the head as an `audit_checkpoint` receipt; None if it has not moved since the last.

    The head is read without a lock: a checkpoint of a head a moment old is as good as any, and
    not locking keeps the lock order one-way (requests that issue receipts hold the log-state
    lock, then take the head lock before commit; this takes only the log-state lock).
    """
    head = AuditHeadRepository(session).read()
    if head.seq == 0:
        return None
    latest = AuditCheckpointReceiptRepository(session).latest()
    if latest is not None and latest.payload == checkpoint_payload(head):
        return None
    return issue_receipt(
        session,
        ReceiptDraft(
            kind=ReceiptKind.AUDIT_CHECKPOINT,
            tenant="system",
            subject=CHECKPOINT_SUBJECT,
            payload=checkpoint_payload(head),
        ),
        signer=signer,
        max_inclusion_delay=max_inclusion_delay,
    )


# ------------------------------------------------------------------------------------- verify


@dataclass
class VerificationReport:
    """The outcome of `verify_log`; `problems` lists at most MAX_PROBLEMS_LISTED of them."""

    entries: int = 0
    head: Head = field(default_factory=Head.genesis)  # the last entry read
    head_row: Head = field(default_factory=Head.genesis)
    checkpoints: int = 0
    last_checkpoint_seq: int | None = None
    problems: list[Problem] = field(default_factory=list)
    problems_total: int = 0

    @property
    def ok(self) -> bool:
        return self.problems_total == 0

    def add(self, problems: list[Problem]) -> None:
        self.problems_total += len(problems)
        room = MAX_PROBLEMS_LISTED - len(self.problems)
        self.problems.extend(problems[: max(room, 0)])

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head": {"seq": self.head.seq, "hash": hex_hash(self.head.entry_hash)},
            "head_row": {"seq": self.head_row.seq, "hash": hex_hash(self.head_row.entry_hash)},
            "checkpoints": self.checkpoints,
            "last_checkpoint_seq": self.last_checkpoint_seq,
            "first_bad_seq": min((p.seq for p in self.problems), default=None),
            "problems_total": self.problems_total,
            "problems": [problem.as_dict() for problem in self.problems],
        }


def iter_entries(factory: SessionFactory, *, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[Entry]:
    """Every entry in seq order, read in pages of `page_size`, one short transaction per page.

    Short transactions matter on SQLite, where every transaction holds the only write lock.
    """
    if page_size < 1:
        raise ValueError(f"page_size must be positive, got {page_size}")
    after = 0
    while True:
        with session_scope(factory) as session:
            page = AuditEntryRepository(session).page_after(after, limit=page_size)
        yield from page
        if len(page) < page_size:
            return
        after = page[-1].seq


def verify_log(
    factory: SessionFactory, *, page_size: int = DEFAULT_PAGE_SIZE
) -> VerificationReport:
    """Recompute every entry's hash and link, and check them against every receipted head.

    Witnesses are the `audit_checkpoint` receipts (each first checked against its own
    commitment and its leaf in the Merkle log, so an edited receipt row is not trusted) and the
    head row. Entries are streamed; only the witnesses are held in memory.
    """
    report = VerificationReport()
    with session_scope(factory) as session:
        report.head_row = AuditHeadRepository(session).read()
        receipts = AuditCheckpointReceiptRepository(session).all()
        leaves = MerkleNodeRepository(session).get_hashes((0, r.leaf_index) for r in receipts)
        head_row = report.head_row
        witnesses = [Witness(head_row.seq, head_row.entry_hash, "the audit_head row")]
        for receipt in receipts:
            witness, problems = _receipt_witness(receipt, leaves.get((0, receipt.leaf_index)))
            report.add(problems)
            if witness is not None:
                witnesses.append(witness)
                report.checkpoints += 1
                report.last_checkpoint_seq = max(report.last_checkpoint_seq or 0, witness.seq)
    verifier = ChainVerifier(witnesses)
    for entry in iter_entries(factory, page_size=page_size):
        report.add(verifier.feed(entry))
    report.add(verifier.finish())
    report.entries = verifier.entries_seen
    report.head = verifier.head
    return report


def _receipt_witness(receipt: Receipt, leaf: bytes | None) -> tuple[Witness | None, list[Problem]]:
    source = f"checkpoint receipt {receipt.id} (leaf {receipt.leaf_index})"
    payload = receipt.payload
    seq = payload.get("seq") if isinstance(payload, dict) else None
    head = payload.get("head") if isinstance(payload, dict) else None
    where = seq if isinstance(seq, int) and not isinstance(seq, bool) else 0
    try:
        digest = bytes.fromhex(head.removeprefix("0x")) if isinstance(head, str) else b""
    except ValueError:
        digest = b""
    if where < 1 or len(digest) != 32:
        return None, [
            Problem(
                where,
                "checkpoint_receipt",
                f"{source}: payload {payload!r} is "
                "not {'seq': <positive int>, 'head': '0x<64 hex>'}",
            )
        ]
    if commitment(receipt_document(receipt), receipt.salt) != receipt.commitment:
        return None, [
            Problem(
                where,
                "checkpoint_receipt",
                f"{source}: its fields no longer match its commitment: the receipt row was edited",
            )
        ]
    if leaf != leaf_hash(receipt.commitment):
        return None, [
            Problem(
                where,
                "checkpoint_receipt",
                f"{source}: its commitment is not the Merkle log's leaf at its index",
            )
        ]
    return Witness(where, digest, source), []
