"""Durable state of outgoing transactions: nonce counters and every signed transaction.

Why a database and not memory: a process that crashes between signing and mining must not lose
the transaction (it is rebroadcast on restart from `raw_tx`), and several processes sending from
one key must agree on nonces. The tables live on their own `chain_metadata` so chain_adapters
stays independent of the backend; the backend's Alembic environment includes this metadata.

Addresses are stored lowercase (`0x` + 40 hex) so that SQL equality never depends on checksum
casing; hashes are `0x`-prefixed lowercase hex.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    select,
    update,
)

TxStatus = Literal["pending", "mined", "confirmed", "failed", "replaced", "dropped"]
TX_STATUSES: tuple[str, ...] = get_args(TxStatus)
UNFINISHED: tuple[TxStatus, ...] = ("pending", "mined")

chain_metadata = MetaData()

# One row per (chain, sender): the next nonce this system will hand out. Locked for the few
# milliseconds it takes to sign and record a transaction (see nonces.py).
chain_nonces = Table(
    "chain_nonces",
    chain_metadata,
    Column("chain_id", BigInteger, primary_key=True, autoincrement=False),
    Column("sender", String(42), primary_key=True),
    Column("next_nonce", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("next_nonce >= 0", name="ck_chain_nonces_next_nonce"),
)

# One row per signed transaction. A replacement (same nonce, higher fee) is a new row; when one
# attempt of a nonce is mined, its siblings become `replaced`.
chain_transactions = Table(
    "chain_transactions",
    chain_metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("chain_id", BigInteger, nullable=False),
    Column("sender", String(42), nullable=False),
    Column("nonce", BigInteger, nullable=False),
    Column("tx_hash", String(66), nullable=False),
    Column("raw_tx", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),
    Column("to_address", String(42), nullable=True),  # NULL = contract creation
    Column("gas_limit", BigInteger, nullable=False),
    Column("max_fee_per_gas", BigInteger, nullable=True),  # EIP-1559
    Column("max_priority_fee_per_gas", BigInteger, nullable=True),  # EIP-1559
    Column("gas_price", BigInteger, nullable=True),  # legacy
    Column("attempt", Integer, nullable=False),  # 0 = original, 1.. = fee-bumped replacements
    Column("label", String(128), nullable=True),  # free text for operators, e.g. "deploy:Probe"
    Column("error", Text, nullable=True),
    Column("receipt_block_number", BigInteger, nullable=True),
    Column("receipt_block_hash", String(66), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("chain_id", "tx_hash", name="uq_chain_transactions_chain_id_tx_hash"),
    CheckConstraint(
        "status IN (" + ", ".join(f"'{s}'" for s in TX_STATUSES) + ")",
        name="ck_chain_transactions_status",
    ),
    Index("ix_chain_transactions_sender_nonce", "chain_id", "sender", "nonce"),
    Index("ix_chain_transactions_status", "chain_id", "status"),
)


def _now() -> datetime:
    return datetime.now(UTC)


def canonical_address(address: str) -> str:
    return address.lower()


@dataclass(frozen=True, slots=True)
class NewTransaction:
    """A signed transaction about to be recorded (before it is broadcast)."""

    chain_id: int
    sender: str
    nonce: int
    tx_hash: str
    raw_tx: bytes
    to_address: str | None
    gas_limit: int
    max_fee_per_gas: int | None
    max_priority_fee_per_gas: int | None
    gas_price: int | None
    attempt: int = 0
    label: str | None = None


@dataclass(frozen=True, slots=True)
class TxRecord:
    id: int
    chain_id: int
    sender: str
    nonce: int
    tx_hash: str
    raw_tx: bytes = field(repr=False)
    status: TxStatus
    to_address: str | None
    gas_limit: int
    max_fee_per_gas: int | None
    max_priority_fee_per_gas: int | None
    gas_price: int | None
    attempt: int
    label: str | None
    error: str | None
    receipt_block_number: int | None
    receipt_block_hash: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> TxRecord:
        data = dict(row._mapping)
        data["raw_tx"] = bytes(data["raw_tx"])
        return cls(**data)


class TransactionStore:
    """All SQL on `chain_transactions`. Takes an Engine: short, self-committing statements.

    Inserts are the exception: they run on the connection of a nonce reservation, so that the
    nonce and the transaction that uses it commit together or not at all.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_tables(self) -> None:
        """For tests and the embedded SQLite default; deployments use the backend's Alembic."""
        chain_metadata.create_all(self.engine)

    def insert(self, conn: Connection, tx: NewTransaction) -> TxRecord:
        """Record a signed transaction. Signing the same fields twice gives the same bytes and
        hash; that only happens when a chain forgot the first (a devnet revert), so the old row
        is revived as pending instead of violating the unique hash."""
        now = _now()
        existing = conn.execute(
            select(chain_transactions.c.id).where(
                chain_transactions.c.chain_id == tx.chain_id,
                chain_transactions.c.tx_hash == tx.tx_hash.lower(),
            )
        ).scalar_one_or_none()
        if existing is not None:
            conn.execute(
                update(chain_transactions)
                .where(chain_transactions.c.id == existing)
                .values(
                    status="pending",
                    receipt_block_number=None,
                    receipt_block_hash=None,
                    error=None,
                    updated_at=now,
                )
            )
            row = conn.execute(
                select(chain_transactions).where(chain_transactions.c.id == existing)
            ).one()
            return TxRecord.from_row(row)
        values = {
            "chain_id": tx.chain_id,
            "sender": canonical_address(tx.sender),
            "nonce": tx.nonce,
            "tx_hash": tx.tx_hash.lower(),
            "raw_tx": tx.raw_tx,
            "status": "pending",
            "to_address": canonical_address(tx.to_address) if tx.to_address else None,
            "gas_limit": tx.gas_limit,
            "max_fee_per_gas": tx.max_fee_per_gas,
            "max_priority_fee_per_gas": tx.max_priority_fee_per_gas,
            "gas_price": tx.gas_price,
            "attempt": tx.attempt,
            "label": tx.label,
            "created_at": now,
            "updated_at": now,
        }
        result = conn.execute(chain_transactions.insert().values(**values))
        (tx_id,) = result.inserted_primary_key or (None,)
        row = conn.execute(select(chain_transactions).where(chain_transactions.c.id == tx_id)).one()
        return TxRecord.from_row(row)

    def get(self, tx_id: int) -> TxRecord:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(chain_transactions).where(chain_transactions.c.id == tx_id)
            ).one()
        return TxRecord.from_row(row)

    def by_hash(self, chain_id: int, tx_hash: str) -> TxRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(chain_transactions).where(
                    chain_transactions.c.chain_id == chain_id,
                    chain_transactions.c.tx_hash == tx_hash.lower(),
                )
            ).one_or_none()
        return TxRecord.from_row(row) if row is not None else None

    def attempts(self, chain_id: int, sender: str, nonce: int) -> list[TxRecord]:
        """Every signed attempt for one nonce, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(chain_transactions)
                .where(
                    chain_transactions.c.chain_id == chain_id,
                    chain_transactions.c.sender == canonical_address(sender),
                    chain_transactions.c.nonce == nonce,
                )
                .order_by(chain_transactions.c.id)
            ).all()
        return [TxRecord.from_row(r) for r in rows]

    def unfinished(self, chain_id: int, sender: str | None = None) -> list[TxRecord]:
        """Rows still needing attention (pending or mined-not-final), by nonce then attempt."""
        query = select(chain_transactions).where(
            chain_transactions.c.chain_id == chain_id,
            chain_transactions.c.status.in_(UNFINISHED),
        )
        if sender is not None:
            query = query.where(chain_transactions.c.sender == canonical_address(sender))
        with self.engine.connect() as conn:
            rows = conn.execute(
                query.order_by(chain_transactions.c.nonce, chain_transactions.c.id)
            ).all()
        return [TxRecord.from_row(r) for r in rows]

    def for_sender(self, chain_id: int, sender: str) -> list[TxRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(chain_transactions)
                .where(
                    chain_transactions.c.chain_id == chain_id,
                    chain_transactions.c.sender == canonical_address(sender),
                )
                .order_by(chain_transactions.c.nonce, chain_transactions.c.id)
            ).all()
        return [TxRecord.from_row(r) for r in rows]

    def set_status(
        self,
        tx_ids: int | Sequence[int],
        status: TxStatus,
        *,
        block_number: int | None = None,
        block_hash: str | None = None,
        error: str | None = None,
    ) -> None:
        """Move rows to `status`; receipt fields are set (or cleared, on a reorg) with it."""
        ids = [tx_ids] if isinstance(tx_ids, int) else list(tx_ids)
        if not ids:
            return
        values: dict[str, Any] = {
            "status": status,
            "updated_at": _now(),
            "receipt_block_number": block_number,
            "receipt_block_hash": block_hash,
        }
        if error is not None:
            values["error"] = error
        with self.engine.begin() as conn:
            conn.execute(
                update(chain_transactions).where(chain_transactions.c.id.in_(ids)).values(**values)
            )

    def forget_chain(self, chain_id: int) -> int:
        """Delete every nonce counter and transaction of a chain that was reset (a fresh devnet
        reusing a chain id): its history is gone, so ours must go too, or a counter ahead of the
        new chain would stall the first send and `resume_pending` would replay stale
        transactions. Returns the number of transactions deleted."""
        with self.engine.begin() as conn:
            conn.execute(delete(chain_nonces).where(chain_nonces.c.chain_id == chain_id))
            result = conn.execute(
                delete(chain_transactions).where(chain_transactions.c.chain_id == chain_id)
            )
        return int(result.rowcount or 0)
