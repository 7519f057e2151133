"""Anchoring the receipts log on-chain: `anchor(treeSize, root)` on every configured chain.

Flush, never commit: the caller (the `receipts.anchor` task) owns the transaction.

The chain is the source of truth, the `receipt_anchors` table a record of it. Before sending,
each chain's `latest()` is read: a size the chain already holds is recorded, not sent again
(a crash between broadcast and commit leaves exactly that state), and a size at or below the
chain's latest is never sent (the contract would revert `TreeSizeNotIncreasing`). An anchor
transaction the adapter persisted but the chain does not hold yet (crash before it was mined,
or a reorg that removed it) is resumed — the same signed transaction, same nonce — rather than
a second one signed. `refresh` follows recorded anchors: a row whose transaction or block is
gone is marked `dropped`, and the next `anchor_once` anchors the log again on that chain.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from eth_utils import keccak
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.exceptions import Conflict
from backend.kit.columns import utcnow
from backend.receipts.exceptions import ReceiptError
from backend.receipts.models import Anchor, AnchorStatus, LogCheckpoint
from backend.receipts.repository import MerkleLogStateRepository
from backend.receipts.service import checkpoint
from backend.receipts.signing import ReceiptSigner
from chain_adapters.base import ABI, ContractCall, Receipt
from chain_adapters.evm.adapter import EvmAdapter
from chain_adapters.exceptions import ContractRevert, TransactionTimeout

__all__ = [
    "ANCHORED_TOPIC",
    "AnchorConflict",
    "AnchorPlan",
    "AnchorPolicy",
    "AnchorRecord",
    "AnchorSchedule",
    "AnchorTargets",
    "anchor_label",
    "anchor_once",
    "due",
    "plan_anchor",
    "record_anchors",
    "refresh",
    "send_anchors",
]

logger = logging.getLogger(__name__)

#: topic0 of `Anchored(uint64 indexed treeSize, bytes32 root, uint64 prevSize, bytes32 prevRoot)`
ANCHORED_TOPIC = "0x" + keccak(text="Anchored(uint64,bytes32,uint64,bytes32)").hex()
LABEL_PREFIX = "receipts.anchor:"
ZERO_ROOT = bytes(32)

#: chain id -> (adapter sending as the operator, ReceiptAnchor address)
AnchorTargets = Mapping[int, tuple[EvmAdapter, str]]


class AnchorConflict(ReceiptError, Conflict):
    """A chain holds another root for a size we anchor: a split view, never to be papered over."""

    code = "anchor_conflict"


class AnchorPolicy(Protocol):
    """When to anchor: `max_age_seconds` after the last anchored checkpoint or `max_receipts`
    new receipts, whichever comes first."""

    @property
    def max_age_seconds(self) -> float: ...

    @property
    def max_receipts(self) -> int: ...

    @property
    def check_interval_seconds(self) -> float: ...


@dataclass(frozen=True)
class AnchorSchedule:
    max_age_seconds: float = 600.0
    max_receipts: int = 1024
    check_interval_seconds: float = 30.0


@dataclass(frozen=True)
class AnchorRecord:
    """An anchor recorded by this run; `sent` is False when the chain already held it."""

    chain_id: int
    contract: str
    tree_size: int
    root: bytes
    tx_hash: str | None
    block_number: int | None
    block_hash: str | None
    status: AnchorStatus
    sent: bool


def anchor_label(tree_size: int) -> str:
    """The adapter's transaction label of `anchor(tree_size, ...)`: how a crash is recognised."""
    return f"{LABEL_PREFIX}{tree_size}"


# ------------------------------------------------------------------------------------- policy


def due(
    session: Session,
    policy: AnchorPolicy,
    now: datetime,
    *,
    chain_ids: Collection[int] | None = None,
) -> bool:
    """Whether the log should be anchored now.

    Only if the log grew past the size anchored on the chain that lags most; then when
    `max_receipts` receipts were added since, or `max_age_seconds` passed since that size's
    checkpoint, or a receipt waiting since would miss its signed `include_by` if anchoring waited
    for the next check (two check intervals of margin: one for the wait, one for the run).
    A chain in `chain_ids` with no anchor yet counts as anchored at size 0.
    """
    size = MerkleLogStateRepository(session).size()
    if size == 0:
        return False
    live = (
        select(Anchor.chain_id, func.max(Anchor.tree_size))
        .where(Anchor.status != AnchorStatus.DROPPED.value)
        .group_by(Anchor.chain_id)
    )
    anchored: dict[int, int] = {int(c): int(s) for c, s in session.execute(live)}
    for chain_id in chain_ids or ():
        anchored.setdefault(chain_id, 0)
    if not anchored:
        return True
    lagging = min(anchored.values())
    if size <= lagging:
        return False
    if lagging == 0 or size - lagging >= policy.max_receipts:
        return True
    # Keep the signed promises: anchor now if some waiting receipt's `include_by` would pass
    # before the next check (a receipt's deadline, not only the log's age, decides).
    deadline = MerkleLogStateRepository(session).earliest_include_by(from_index=lagging)
    if deadline is not None and deadline.timestamp() - now.timestamp() <= (
        policy.check_interval_seconds * 2
    ):
        return True
    anchored_at = session.execute(
        select(LogCheckpoint.timestamp).where(LogCheckpoint.size == lagging)
    ).scalar_one_or_none()
    if anchored_at is None:
        return True
    return now.timestamp() - anchored_at >= policy.max_age_seconds


# ------------------------------------------------------------------------------------ anchoring


@dataclass(frozen=True)
class AnchorPlan:
    """The checkpoint to anchor and the chains that hold no live anchor row for it yet."""

    size: int
    root: bytes
    chain_ids: tuple[int, ...]


def anchor_once(
    session: Session,
    *,
    signer: ReceiptSigner,
    adapters: AnchorTargets,
    abi: ABI,
    now: datetime | None = None,
) -> list[AnchorRecord]:
    """Checkpoint the log and anchor that size on every chain that does not hold it yet.

    Returns what this run recorded (sent or found on-chain); flushes, never commits.

    The session's transaction stays open while transactions are sent, so the adapters' nonce
    store must not wait on it: fine on PostgreSQL, or with a store in another SQLite file. On a
    single SQLite file (whose transactions take the write lock at BEGIN) call the three steps
    with a commit after `plan_anchor`, as the `receipts.anchor` task does.
    """
    plan = plan_anchor(session, signer=signer, adapters=adapters, now=now)
    return record_anchors(session, send_anchors(plan, adapters=adapters, abi=abi))


def plan_anchor(
    session: Session,
    *,
    signer: ReceiptSigner,
    adapters: AnchorTargets,
    now: datetime | None = None,
) -> AnchorPlan:
    """Make (or reuse) the signed checkpoint of the current size; flushes, never commits."""
    signed = checkpoint(session, signer, now or utcnow())
    if signed.size == 0:
        return AnchorPlan(0, signed.root, ())
    waiting = tuple(c for c in adapters if _live_row(session, c, signed.size) is None)
    return AnchorPlan(signed.size, signed.root, waiting)


def send_anchors(plan: AnchorPlan, *, adapters: AnchorTargets, abi: ABI) -> list[AnchorRecord]:
    """Anchor `plan` on its chains (reading each chain first); touches no session."""
    records: list[AnchorRecord] = []
    for chain_id in plan.chain_ids:
        adapter, contract = adapters[chain_id]
        record = _anchor_on(adapter, contract, abi, plan.size, plan.root)
        if record is not None:
            records.append(record)
    return records


def record_anchors(session: Session, records: Sequence[AnchorRecord]) -> list[AnchorRecord]:
    """Store `records` as `receipt_anchors` rows; flushes, never commits."""
    for record in records:
        session.add(
            Anchor(
                chain_id=record.chain_id,
                contract=record.contract,
                tree_size=record.tree_size,
                root=record.root,
                tx_hash=record.tx_hash,
                block_number=record.block_number,
                block_hash=record.block_hash,
                status=record.status.value,
            )
        )
    session.flush()
    return list(records)


def _anchor_on(
    adapter: EvmAdapter, contract: str, abi: ABI, size: int, root: bytes
) -> AnchorRecord | None:
    on_chain = _latest_size(adapter, contract, abi)
    resumed = on_chain < size and _resume_unmined_anchors(adapter)
    if resumed:
        on_chain = _latest_size(adapter, contract, abi)
    if on_chain >= size:
        adopted = _adopt(adapter, contract, abi, size, root)
        if adopted is not None and resumed:  # our own signed transaction, broadcast again
            adopted = replace(adopted, sent=True)
        return adopted
    call = ContractCall(address=contract, abi=abi, function="anchor", args=(size, root))
    try:
        receipt = adapter.send(call, wait="mined", label=anchor_label(size))
    except ContractRevert as error:
        if error.error_name != "TreeSizeNotIncreasing":
            raise
        # Another sender (or our own earlier transaction) got there first: adopt what is there.
        logger.info("[%s] anchor %d: %s; re-reading the chain", adapter.chain.name, size, error)
        return _adopt(adapter, contract, abi, size, root)
    except TransactionTimeout as error:
        # Persisted and broadcast, not mined in time: the adapter resumes it, refresh follows.
        return _record(adapter, contract, size, root, error.tx_hash, None, AnchorStatus.PENDING)
    logger.info(
        "[%s] anchored size %d in block %d (tx %s)",
        adapter.chain.name,
        size,
        receipt.block_number,
        receipt.transaction_hash,
    )
    return _record(adapter, contract, size, root, None, receipt, AnchorStatus.CONFIRMED, sent=True)


def _adopt(
    adapter: EvmAdapter, contract: str, abi: ABI, size: int, root: bytes
) -> AnchorRecord | None:
    """Record an anchor of `size` the chain already holds (found via its `Anchored` log)."""
    held = bytes(adapter.call(ContractCall(contract, abi, "rootAt", (size,))))
    if held == ZERO_ROOT:
        logger.warning(
            "[%s] size %d was never anchored but a larger size was; not anchoring it",
            adapter.chain.name,
            size,
        )
        return None
    if held != root:
        raise AnchorConflict(
            f"chain {adapter.chain_id} holds root 0x{held.hex()} for size {size}, "
            f"the log's root is 0x{root.hex()}",
            hint="Split view: stop anchoring and investigate the anchoring key's use.",
        )
    _, block_number, _ = adapter.call(ContractCall(contract, abi, "anchorOf", (size,)))
    logs = adapter.get_logs(
        from_block=int(block_number),
        to_block=int(block_number),
        address=contract,
        topics=[ANCHORED_TOPIC, "0x" + size.to_bytes(32, "big").hex()],
    )
    if not logs:  # reorganised between the two reads: the next run will see
        return None
    log = logs[-1]
    return AnchorRecord(
        chain_id=adapter.chain_id,
        contract=contract,
        tree_size=size,
        root=root,
        tx_hash=log.transaction_hash,
        block_number=log.block_number,
        block_hash=log.block_hash,
        status=AnchorStatus.CONFIRMED,
        sent=False,
    )


def _record(
    adapter: EvmAdapter,
    contract: str,
    size: int,
    root: bytes,
    tx_hash: str | None,
    receipt: Receipt | None,
    status: AnchorStatus,
    *,
    sent: bool = True,
) -> AnchorRecord:
    return AnchorRecord(
        chain_id=adapter.chain_id,
        contract=contract,
        tree_size=size,
        root=root,
        tx_hash=receipt.transaction_hash if receipt is not None else tx_hash,
        block_number=receipt.block_number if receipt is not None else None,
        block_hash=receipt.block_hash if receipt is not None else None,
        status=status,
        sent=sent,
    )


def _latest_size(adapter: EvmAdapter, contract: str, abi: ABI) -> int:
    size, _root, _block = adapter.call(ContractCall(contract, abi, "latest"))
    return int(size)


def _resume_unmined_anchors(adapter: EvmAdapter) -> bool:
    """Resume the operator's transactions if an anchor of ours is persisted but not on-chain.

    Such a transaction exists after a crash between broadcast and commit (not mined yet) or a
    reorg that removed it; signing another would only queue behind its nonce.
    """
    store, signer = adapter.store, adapter.signer
    if store is None or signer is None:
        return False
    included = adapter.transaction_count(signer.address, block="latest")
    unmined = [
        row
        for row in store.unfinished(adapter.chain_id, signer.address)
        if (row.label or "").startswith(LABEL_PREFIX) and row.nonce >= included
    ]
    if not unmined:
        return False
    logger.warning(
        "[%s] resuming %d unmined anchor transaction(s): %s",
        adapter.chain.name,
        len(unmined),
        ", ".join(row.tx_hash for row in unmined),
    )
    adapter.resume_pending(wait="mined")
    return True


# ------------------------------------------------------------------------------------ refresh


def refresh(session: Session, adapters: AnchorTargets) -> list[Anchor]:
    """Follow pending and confirmed anchors: mined, reorganised away (dropped), or final.

    Returns the rows whose status changed; flushes, never commits.
    """
    rows = session.scalars(
        select(Anchor)
        .where(
            Anchor.status.in_([AnchorStatus.PENDING.value, AnchorStatus.CONFIRMED.value]),
            Anchor.chain_id.in_(list(adapters)),
        )
        .order_by(Anchor.id)
    ).all()
    changed: list[Anchor] = []
    for row in rows:
        adapter, _contract = adapters[row.chain_id]
        before = row.status
        _refresh_row(adapter, row)
        if row.status != before:
            changed.append(row)
    session.flush()
    return changed


def _refresh_row(adapter: EvmAdapter, row: Anchor) -> None:
    receipt = _receipt(adapter, row.tx_hash) if row.tx_hash is not None else None
    if row.status == AnchorStatus.PENDING.value:
        if receipt is None:
            return  # still in flight: the adapter's wait/resume rebroadcasts it
        row.block_number, row.block_hash = receipt.block_number, receipt.block_hash
        row.status = AnchorStatus.CONFIRMED.value
    if receipt is None or not _still_canonical(adapter, row, receipt):
        logger.warning(
            "[%s] anchor of size %d (tx %s, block %s) was reorganised away",
            adapter.chain.name,
            row.tree_size,
            row.tx_hash,
            row.block_number,
        )
        row.status = AnchorStatus.DROPPED.value
        return
    if adapter.is_final(receipt.block_number):
        row.status = AnchorStatus.FINAL.value


def _still_canonical(adapter: EvmAdapter, row: Anchor, receipt: Receipt) -> bool:
    if receipt.block_hash != row.block_hash or receipt.block_number != row.block_number:
        return False
    if row.block_number is None or row.block_number > adapter.head():
        return False
    return adapter.block(row.block_number).hash == row.block_hash


def _receipt(adapter: EvmAdapter, tx_hash: str) -> Receipt | None:
    try:
        return adapter.wait_for_receipt(tx_hash, timeout=0)
    except TransactionTimeout:
        return None


def _live_row(session: Session, chain_id: int, size: int) -> Anchor | None:
    return session.scalars(
        select(Anchor).where(
            Anchor.chain_id == chain_id,
            Anchor.tree_size == size,
            Anchor.status != AnchorStatus.DROPPED.value,
        )
    ).one_or_none()
