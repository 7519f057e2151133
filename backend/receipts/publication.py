"""What the log publishes: receipts to those allowed to see them, proof bundles with anchors,
checkpoints and consistency proofs (no HTTP, no commit).

Visibility is decided in the queries themselves (`VisibleReceipts`): a tenant-scoped reader
cannot even load another tenant's row, so an endpoint that forgot a check still leaks nothing.
Auditors read with `tenant=None`.

Which checkpoint a bundle proves against: the smallest tree size that covers the receipt and is
anchored *final* on some chain; failing that, the smallest one anchored at all (confirmed);
failing that, the latest checkpoint (signed now if the receipt is newer than every checkpoint)
with no anchors, which `credagg verify` reports as "not yet anchored" (exit 2) until anchoring
catches up. The smallest is the first anchor that included the receipt, so the verifier's
`included_late` check judges the issuance promise against when inclusion really happened; a
later size can always be asked for with `size=` (and linked by a consistency proof).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from backend.kit.repository import RepositoryBase
from backend.receipts import bundle as bundle_format
from backend.receipts.exceptions import InvalidTreeSize, ReceiptNotFound
from backend.receipts.models import Anchor, AnchorStatus, LogCheckpoint, Receipt
from backend.receipts.node_store import DbNodeStore
from backend.receipts.service import (
    checkpoint,
    consistency_proof_between,
    issuance_of,
    receipt_document,
)
from backend.receipts.signing import ReceiptSigner, SignedCheckpoint

__all__ = [
    "AnchorRepository",
    "VisibleReceipts",
    "checkpoint_file",
    "consistency_file",
    "proof_bundle",
    "visible_receipt",
]

#: Anchors that a bundle may cite: mined (so they have a block) and not reorganised away.
_CITABLE = (AnchorStatus.CONFIRMED.value, AnchorStatus.FINAL.value)


class VisibleReceipts(RepositoryBase[Receipt]):
    """Receipts as one reader may see them: `tenant=None` is an auditor (sees every receipt)."""

    model = Receipt

    def __init__(self, session: Session, *, tenant: str | None) -> None:
        super().__init__(session)
        self.tenant = tenant

    def get_base_statement(self) -> Select[Receipt]:  # type: ignore[override]
        statement = select(Receipt)
        if self.tenant is not None:
            statement = statement.where(Receipt.tenant == self.tenant)
        return statement

    def by_id(self, receipt_id: uuid.UUID) -> Receipt | None:
        return self.get_one_or_none(self.get_base_statement().where(Receipt.id == receipt_id))

    def page(
        self,
        *,
        after: int | None,
        limit: int,
        kind: str | None = None,
        subject: str | None = None,
    ) -> Sequence[Receipt]:
        """Receipts in log order after leaf index `after` (keyset pagination)."""
        statement = self.get_base_statement()
        if after is not None:
            statement = statement.where(Receipt.leaf_index > after)
        if kind is not None:
            statement = statement.where(Receipt.kind == kind)
        if subject is not None:
            statement = statement.where(Receipt.subject == subject)
        return self.get_all(statement.order_by(Receipt.leaf_index).limit(limit))


class AnchorRepository(RepositoryBase[Anchor]):
    model = Anchor

    def citable_at(self, tree_size: int) -> Sequence[Anchor]:
        """Mined, live anchors of exactly this size, one per chain, in chain order."""
        statement = (
            self.get_base_statement()
            .where(
                Anchor.tree_size == tree_size,
                Anchor.status.in_(_CITABLE),
                Anchor.block_number.is_not(None),
            )
            .order_by(Anchor.chain_id)
        )
        return self.get_all(statement)

    def first_size_covering(self, leaf_index: int) -> int | None:
        """The smallest anchored size > `leaf_index`, preferring sizes final on some chain."""
        for statuses in ((AnchorStatus.FINAL.value,), _CITABLE):
            statement = (
                select(Anchor.tree_size)
                .where(Anchor.tree_size > leaf_index, Anchor.status.in_(statuses))
                .order_by(Anchor.tree_size)
                .limit(1)
            )
            size = self.session.execute(statement).scalar_one_or_none()
            if size is not None:
                return int(size)
        return None


def visible_receipt(session: Session, receipt_id: uuid.UUID, *, tenant: str | None) -> Receipt:
    """The receipt if `tenant` may see it; otherwise the same 404 as for a missing one (no
    probing for other tenants' receipt ids)."""
    receipt = VisibleReceipts(session, tenant=tenant).by_id(receipt_id)
    if receipt is None:
        raise ReceiptNotFound(
            f"no receipt {receipt_id} visible to you",
            hint="Receipts are visible to their own wallet or provider, and to auditors.",
        )
    return receipt


def proof_bundle(
    session: Session,
    receipt: Receipt,
    *,
    signer: ReceiptSigner,
    now: datetime,
    tree_size: int | None = None,
) -> bundle_format.ProofBundle:
    """The bundle of `receipt` (see the module docstring for which checkpoint); may store a new
    checkpoint (flush, never commit), never anything else."""
    anchors = AnchorRepository(session)
    if tree_size is not None:
        signed = _stored_checkpoint(session, tree_size)
        if tree_size <= receipt.leaf_index:
            raise InvalidTreeSize(
                f"receipt is leaf {receipt.leaf_index}; tree size {tree_size} does not include it",
                hint=f"Ask for a size above {receipt.leaf_index}, or omit `size`.",
            )
    else:
        anchored = anchors.first_size_covering(receipt.leaf_index)
        if anchored is not None:
            signed = _stored_checkpoint(session, anchored)
        else:
            signed = checkpoint(session, signer, now)
    return bundle_format.build_bundle(
        DbNodeStore(session),
        receipt=receipt_document(receipt),
        salt=receipt.salt,
        leaf_index=receipt.leaf_index,
        issuance=issuance_of(receipt),
        checkpoint=signed,
        anchors=[_cited(row) for row in anchors.citable_at(signed.size)],
    )


def checkpoint_file(
    session: Session,
    *,
    signer: ReceiptSigner,
    now: datetime,
    tree_size: int | None = None,
    consistency_from: int | None = None,
) -> bundle_format.CheckpointFile:
    """A checkpoint with where it is anchored and, optionally, the proof that the log of
    `consistency_from` leaves is its prefix (the file `credagg consistency` takes)."""
    if tree_size is None:
        signed = checkpoint(session, signer, now)
    else:
        signed = _stored_checkpoint(session, tree_size)
    consistency = None
    if consistency_from is not None:
        proof = consistency_proof_between(session, consistency_from, signed.size)
        consistency = bundle_format.ConsistencyProof(proof.first, proof.second, tuple(proof.path))
    return bundle_format.CheckpointFile(
        checkpoint=signed,
        anchors=tuple(_cited(row) for row in AnchorRepository(session).citable_at(signed.size)),
        consistency=consistency,
    )


def consistency_file(session: Session, first: int, second: int) -> bundle_format.ConsistencyProof:
    proof = consistency_proof_between(session, first, second)
    return bundle_format.ConsistencyProof(proof.first, proof.second, tuple(proof.path))


def _stored_checkpoint(session: Session, tree_size: int) -> SignedCheckpoint:
    stored = session.execute(
        select(LogCheckpoint).where(LogCheckpoint.size == tree_size)
    ).scalar_one_or_none()
    if stored is None:
        raise InvalidTreeSize(
            f"no signed checkpoint of tree size {tree_size}",
            hint="Use a size from GET /v1/log/checkpoint or an anchored size; omit it for latest.",
        )
    return SignedCheckpoint(
        size=stored.size,
        root=stored.root,
        timestamp=stored.timestamp,
        key_id=stored.key_id,
        signature_hex=stored.signature,
    )


def _cited(row: Anchor) -> bundle_format.Anchor:
    assert row.tx_hash is not None and row.block_number is not None and row.block_hash
    return bundle_format.Anchor(
        chain_id=row.chain_id,
        contract=row.contract.lower(),
        tx_hash=bytes.fromhex(row.tx_hash.removeprefix("0x")),
        block_number=row.block_number,
        block_hash=bytes.fromhex(row.block_hash.removeprefix("0x")),
    )
