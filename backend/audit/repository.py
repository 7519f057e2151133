"""All SQL of the audit log (and its one read of the receipt log: the checkpoint receipts)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, insert, select, update

from backend.audit.chain import Entry, Head
from backend.audit.models import HEAD_ID, AuditEntry, AuditHead
from backend.kit.repository import RepositoryBase
from backend.receipts.models import Receipt, ReceiptKind

#: The `subject` of every audit-checkpoint receipt.
CHECKPOINT_SUBJECT = "audit-log"

_ENTRY_COLUMNS = (
    AuditEntry.seq,
    AuditEntry.at,
    AuditEntry.actor,
    AuditEntry.action,
    AuditEntry.resource,
    AuditEntry.request_id,
    AuditEntry.status,
    AuditEntry.prev_hash,
    AuditEntry.entry_hash,
)


class AuditHeadRepository(RepositoryBase[AuditHead]):
    model = AuditHead

    def read(self) -> Head:
        statement = select(AuditHead.seq, AuditHead.entry_hash).where(AuditHead.id == HEAD_ID)
        seq, digest = self.session.execute(statement).one()
        return Head(int(seq), bytes(digest))

    def lock(self) -> Head:
        """The head, with its row locked until the transaction ends.

        `FOR UPDATE` on PostgreSQL; SQLite drops the clause, but every transaction there began
        with BEGIN IMMEDIATE and already holds the database's only write lock.
        """
        statement = (
            select(AuditHead.seq, AuditHead.entry_hash)
            .where(AuditHead.id == HEAD_ID)
            .with_for_update()
        )
        seq, digest = self.session.execute(statement).one()
        return Head(int(seq), bytes(digest))

    def set(self, head: Head) -> None:
        self.session.execute(
            update(AuditHead)
            .where(AuditHead.id == HEAD_ID)
            .values(seq=head.seq, entry_hash=head.entry_hash)
        )


class AuditEntryRepository(RepositoryBase[AuditEntry]):
    model = AuditEntry

    def insert(self, entry: Entry) -> None:
        # Core, not the ORM: nothing reads the row back in this unit of work.
        self.session.execute(
            insert(AuditEntry).values(
                seq=entry.seq,
                at=entry.at,
                actor=entry.actor,
                action=entry.action,
                resource=entry.resource,
                request_id=entry.request_id,
                status=entry.status,
                prev_hash=entry.prev_hash,
                entry_hash=entry.entry_hash,
            )
        )

    def page_after(self, seq: int, *, limit: int) -> list[Entry]:
        """Up to `limit` entries with seq > `seq`, in seq order (keyset pagination).

        Plain rows, not ORM objects, so a long scan does not fill the identity map.
        """
        statement = (
            select(*_ENTRY_COLUMNS)
            .where(AuditEntry.seq > seq)
            .order_by(AuditEntry.seq)
            .limit(limit)
        )
        return [
            Entry(
                seq=int(row.seq),
                at=row.at,
                actor=row.actor,
                action=row.action,
                resource=row.resource,
                request_id=row.request_id,
                status=int(row.status),
                prev_hash=bytes(row.prev_hash),
                entry_hash=bytes(row.entry_hash),
            )
            for row in self.session.execute(statement)
        ]


class AuditCheckpointReceiptRepository(RepositoryBase[Receipt]):
    """Read-only: the `audit_checkpoint` receipts the log's head was issued into."""

    model = Receipt

    def get_base_statement(self) -> Select[Receipt]:
        return select(Receipt).where(
            Receipt.kind == ReceiptKind.AUDIT_CHECKPOINT.value,
            Receipt.subject == CHECKPOINT_SUBJECT,
        )

    def latest(self) -> Receipt | None:
        statement = self.get_base_statement().order_by(Receipt.leaf_index.desc()).limit(1)
        return self.get_one_or_none(statement)

    def all(self) -> Sequence[Receipt]:
        """Every checkpoint receipt, in log order: one per checkpoint interval, so few."""
        return self.get_all(self.get_base_statement().order_by(Receipt.leaf_index))
