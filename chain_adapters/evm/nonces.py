"""A nonce allocator that is safe across processes.

Several API replicas and Celery workers may send from the same key. Asking the node for
`eth_getTransactionCount(pending)` each time races (two processes read the same count), and an
in-process lock protects only one process. So the counter is a database row per
(chain_id, sender), locked for the duration of one allocation:

- PostgreSQL: `SELECT ... FOR UPDATE` on the row (created first with INSERT ... ON CONFLICT DO
  NOTHING, so two first-time allocators do not both insert);
- SQLite: `BEGIN IMMEDIATE`, which takes the database write lock up front (a deferred
  transaction would read first and could then fail to upgrade its lock).

The reservation is a context manager whose connection is also used to record the signed
transaction, so the nonce and the transaction that uses it commit together: a crash before the
commit gives the nonce back, a crash after it leaves a recorded transaction that a restart
rebroadcasts. No nonce is ever handed out without a transaction that fills it.

A new row starts at the chain's `eth_getTransactionCount(pending)`. An existing row is re-synced
when the chain is ahead of it: the transaction layer learns that from a "nonce too low" refusal
(someone used the key outside this system) and calls `resync`, or a caller passes the chain's
count to `reserve` as an int. Asking the node on *every* allocation would cost a round trip per
transaction for a case that the refusal already reveals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from chain_adapters.evm.errors import UnsupportedDialect
from chain_adapters.evm.store import canonical_address, chain_nonces

ChainNonce = int | Callable[[], int]
"""The sender's pending transaction count, or a function fetching it (called only if needed)."""


@dataclass(frozen=True, slots=True)
class NonceLease:
    """An allocated nonce, valid while the reservation's `with` block runs."""

    chain_id: int
    sender: str
    nonce: int
    connection: Connection


class NonceAllocator:
    def __init__(self, engine: Engine, *, lock_timeout: float = 30.0) -> None:
        self.engine = engine
        self.lock_timeout = lock_timeout
        if engine.dialect.name not in ("postgresql", "sqlite"):
            raise UnsupportedDialect(
                f"nonce allocation needs PostgreSQL or SQLite, not {engine.dialect.name}"
            )

    @contextmanager
    def reserve(
        self, chain_id: int, sender: str, *, chain_nonce: ChainNonce
    ) -> Iterator[NonceLease]:
        """Lock the counter and yield the next nonce; it is consumed only if the block succeeds.

        `chain_nonce` as an int is a count read *before* locking (no RPC under the lock); it can
        only be lower than or equal to the true count at lock time, so max(row, it) is safe. As
        a function it is called only to initialise a new row.
        """
        with self._locked(chain_id, sender, initial=chain_nonce) as (conn, stored):
            nonce = max(stored, chain_nonce) if isinstance(chain_nonce, int) else stored
            yield NonceLease(chain_id, canonical_address(sender), nonce, conn)
            self._store(conn, chain_id, sender, nonce + 1)

    def release(self, chain_id: int, sender: str, nonce: int) -> bool:
        """Give back `nonce` if nothing was allocated after it (a broadcast was refused).

        Returns False when a later nonce is already out: the caller must then fill the gap.
        """
        with self._locked(chain_id, sender, initial=nonce) as (conn, stored):
            if stored != nonce + 1:
                return False
            self._store(conn, chain_id, sender, nonce)
            return True

    def resync(self, chain_id: int, sender: str, *, chain_nonce: int, force: bool = False) -> int:
        """Raise the counter to the chain's count (`force`: set it, e.g. after a devnet reset)."""
        with self._locked(chain_id, sender, initial=chain_nonce) as (conn, stored):
            target = chain_nonce if force else max(stored, chain_nonce)
            self._store(conn, chain_id, sender, target)
            return target

    def peek(self, chain_id: int, sender: str) -> int | None:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(chain_nonces.c.next_nonce).where(
                    chain_nonces.c.chain_id == chain_id,
                    chain_nonces.c.sender == canonical_address(sender),
                )
            ).scalar_one_or_none()
        return int(value) if value is not None else None

    # -- locking ------------------------------------------------------------------------------

    @contextmanager
    def _locked(
        self, chain_id: int, sender: str, *, initial: ChainNonce
    ) -> Iterator[tuple[Connection, int]]:
        """A connection inside a transaction that holds the (chain_id, sender) row lock."""
        locker = self._sqlite_locked if self.engine.dialect.name == "sqlite" else self._pg_locked
        with locker(chain_id, canonical_address(sender), initial) as held:
            yield held

    @contextmanager
    def _pg_locked(
        self, chain_id: int, sender: str, initial: ChainNonce
    ) -> Iterator[tuple[Connection, int]]:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(self.lock_timeout * 1000)}ms'")
            stored = self._select(conn, chain_id, sender, for_update=True)
            if stored is None:
                # Two first-time allocators may both get here; ON CONFLICT makes the second
                # wait for the first's commit and insert nothing, then both lock the same row.
                conn.execute(
                    pg_insert(chain_nonces)
                    .values(
                        chain_id=chain_id,
                        sender=sender,
                        next_nonce=_value(initial),
                        updated_at=_now(),
                    )
                    .on_conflict_do_nothing(index_elements=["chain_id", "sender"])
                )
                stored = self._select(conn, chain_id, sender, for_update=True)
            assert stored is not None
            yield conn, stored

    @contextmanager
    def _sqlite_locked(
        self, chain_id: int, sender: str, initial: ChainNonce
    ) -> Iterator[tuple[Connection, int]]:
        # pysqlite's own transaction handling would emit a deferred BEGIN; switch it off for this
        # connection (AUTOCOMMIT) and drive BEGIN IMMEDIATE / COMMIT / ROLLBACK ourselves. The
        # pool restores the isolation level when the connection is returned.
        with self.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(self.lock_timeout * 1000)}")
            # An engine may already open every transaction with BEGIN IMMEDIATE (the backend's
            # embedded SQLite does, from a "begin" hook that fires even under AUTOCOMMIT); the
            # write lock is then already held, and a second BEGIN would be an error.
            if not conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                stored = self._select(conn, chain_id, sender, for_update=False)
                if stored is None:
                    stored = _value(initial)
                    conn.execute(
                        sqlite_insert(chain_nonces).values(
                            chain_id=chain_id, sender=sender, next_nonce=stored, updated_at=_now()
                        )
                    )
                yield conn, stored
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")

    @staticmethod
    def _select(conn: Connection, chain_id: int, sender: str, *, for_update: bool) -> int | None:
        query = select(chain_nonces.c.next_nonce).where(
            chain_nonces.c.chain_id == chain_id, chain_nonces.c.sender == sender
        )
        if for_update:
            query = query.with_for_update()
        value = conn.execute(query).scalar_one_or_none()
        return int(value) if value is not None else None

    @staticmethod
    def _store(conn: Connection, chain_id: int, sender: str, next_nonce: int) -> None:
        conn.execute(
            update(chain_nonces)
            .where(
                chain_nonces.c.chain_id == chain_id,
                chain_nonces.c.sender == canonical_address(sender),
            )
            .values(next_nonce=next_nonce, updated_at=_now())
        )


def _now() -> datetime:
    return datetime.now(UTC)


def _value(chain_nonce: ChainNonce) -> int:
    return chain_nonce if isinstance(chain_nonce, int) else int(chain_nonce())
