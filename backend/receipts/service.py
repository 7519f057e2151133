"""Issuing receipts into the Merkle log, checkpoints, and proofs (no HTTP, no commit).

Issuance does the expensive, lock-free work first (canonical form, salt, commitment, Ed25519
signature), then, holding the log-state lock, assigns consecutive leaf indices and inserts the
receipts, their leaf hashes and every subtree hash that became complete, and bumps the size: all
in the caller's transaction, so a rollback leaves no trace and a commit leaves no gap.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from backend.config import Settings
from backend.kit.columns import utcnow
from backend.receipts.canonical import CanonicalizationError
from backend.receipts.commitment import commitment, leaf_hash, new_salt
from backend.receipts.exceptions import (
    InvalidReceipt,
    InvalidTreeSize,
    ReceiptError,
    ReceiptNotFound,
    ReceiptNotInTree,
    UnknownCorrectedReceipt,
)
from backend.receipts.merkle import consistency_proof, inclusion_proof, merkle_root
from backend.receipts.models import LogCheckpoint, Receipt, ReceiptKind
from backend.receipts.node_store import DbNodeStore, frontier_keys, new_complete_nodes
from backend.receipts.repository import (
    LogCheckpointRepository,
    MerkleLogStateRepository,
    MerkleNodeRepository,
    ReceiptRepository,
)
from backend.receipts.signing import ReceiptSigner, Signature, SignedCheckpoint

__all__ = [
    "ConsistencyProof",
    "InclusionProof",
    "InvalidReceipt",
    "InvalidTreeSize",
    "IssuedReceipt",
    "ReceiptDraft",
    "ReceiptError",
    "ReceiptNotFound",
    "ReceiptNotInTree",
    "UnknownCorrectedReceipt",
    "checkpoint",
    "consistency_proof_between",
    "format_issued_at",
    "get_receipt",
    "inclusion_proof_for",
    "issue_receipts",
    "latest_checkpoint",
    "log_size",
    "receipt_document",
    "signer_from_settings",
]

_TENANT = re.compile(r"^(system|provider:[A-Za-z0-9][A-Za-z0-9_.:-]{0,100}|wallet:0x[0-9a-f]{40})$")


# ------------------------------------------------------------------------------------- values


@dataclass(frozen=True)
class ReceiptDraft:
    """What a domain asks to be receipted. `issued_at` defaults to the issuing moment."""

    kind: ReceiptKind
    tenant: str  # "provider:<id>", "wallet:0x<40 hex>" or "system"
    subject: str
    payload: Mapping[str, Any]
    corrects_id: uuid.UUID | None = None
    schema_version: int = 1
    issued_at: datetime | None = None


@dataclass(frozen=True)
class IssuedReceipt:
    """A stored receipt as returned at issue time: with its signed promise of inclusion."""

    id: uuid.UUID
    leaf_index: int
    document: dict[str, Any]  # the object whose JCS bytes were committed to
    salt: bytes
    commitment: bytes
    signature: Signature


@dataclass(frozen=True)
class InclusionProof:
    receipt_id: uuid.UUID
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    path: list[bytes] = field(default_factory=list)


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    path: list[bytes] = field(default_factory=list)


# ------------------------------------------------------------------------- canonical receipt


def format_issued_at(moment: datetime) -> str:
    """The one string form of `issued_at` inside a receipt: UTC, microseconds, 'Z'."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass an aware (UTC) datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def receipt_document(receipt: Receipt) -> dict[str, Any]:
    """The object whose JCS bytes a stored receipt's commitment covers."""
    return _document(
        schema_version=receipt.schema_version,
        kind=receipt.kind,
        tenant=receipt.tenant,
        subject=receipt.subject,
        payload=receipt.payload,
        issued_at=receipt.issued_at,
        corrects_id=receipt.corrects_id,
    )


def _document(
    *,
    schema_version: int,
    kind: str,
    tenant: str,
    subject: str,
    payload: Mapping[str, Any],
    issued_at: datetime,
    corrects_id: uuid.UUID | None,
) -> dict[str, Any]:
    return {
        "v": schema_version,
        "kind": kind,
        "tenant": tenant,
        "subject": subject,
        "payload": dict(payload),
        "issued_at": format_issued_at(issued_at),
        "corrects": str(corrects_id) if corrects_id is not None else None,
    }


# ------------------------------------------------------------------------------------ signing


def signer_from_settings(settings: Settings) -> ReceiptSigner:
    """The log's signer from `CREDAGG_RECEIPT_SIGNING_KEY` (a 64-hex Ed25519 seed)."""
    return ReceiptSigner(bytes.fromhex(settings.receipt_signing_key.get_secret_value()))


# ------------------------------------------------------------------------------------ issuing


@dataclass(frozen=True)
class _Prepared:
    id: uuid.UUID
    draft: ReceiptDraft
    tenant: str
    payload: dict[str, Any]
    issued_at: datetime
    document: dict[str, Any]
    salt: bytes
    commitment: bytes
    signature: Signature


def issue_receipts(
    session: Session, drafts: Sequence[ReceiptDraft], *, signer: ReceiptSigner
) -> list[IssuedReceipt]:
    """Commit to, sign and append `drafts` to the log, in order; flush, never commit.

    Leaf indices are consecutive and assigned under the log-state lock, in the same
    transaction as the rows, so the caller's commit makes all of it durable or none of it.
    """
    if not drafts:
        return []
    now = utcnow()
    prepared = [_prepare(draft, now, signer) for draft in drafts]
    _check_corrections(session, prepared)

    state = MerkleLogStateRepository(session)
    old_size = state.lock_size()
    new_size = old_size + len(prepared)
    ReceiptRepository(session).insert_many(
        [
            {
                "id": item.id,
                "leaf_index": old_size + offset,
                "kind": item.draft.kind.value,
                "schema_version": item.draft.schema_version,
                "tenant": item.tenant,
                "subject": item.draft.subject,
                "payload": item.payload,
                "issued_at": item.issued_at,
                "corrects_id": item.draft.corrects_id,
                "salt": item.salt,
                "commitment": item.commitment,
                "key_id": item.signature.key_id,
                "issuance_signature": item.signature.signature_hex,
            }
            for offset, item in enumerate(prepared)
        ]
    )
    nodes = MerkleNodeRepository(session)
    frontier = nodes.get_hashes(frontier_keys(old_size, new_size))
    leaves = [leaf_hash(item.commitment) for item in prepared]
    nodes.insert_many(new_complete_nodes(old_size, leaves, frontier))
    state.set_size(new_size)
    session.flush()
    return [
        IssuedReceipt(
            id=item.id,
            leaf_index=old_size + offset,
            document=item.document,
            salt=item.salt,
            commitment=item.commitment,
            signature=item.signature,
        )
        for offset, item in enumerate(prepared)
    ]


def _prepare(draft: ReceiptDraft, now: datetime, signer: ReceiptSigner) -> _Prepared:
    tenant = _normalise_tenant(draft.tenant)
    if not 0 < len(draft.subject) <= 255:
        raise InvalidReceipt(f"subject must be 1 to 255 characters, got {len(draft.subject)}")
    if isinstance(draft.schema_version, bool) or draft.schema_version < 1:
        raise InvalidReceipt(
            f"schema_version must be a positive integer, not {draft.schema_version!r}"
        )
    if not isinstance(draft.payload, Mapping):
        raise InvalidReceipt("payload must be a JSON object")
    if draft.issued_at is not None and draft.issued_at.tzinfo is None:
        raise InvalidReceipt("issued_at must be an aware (UTC) datetime")
    issued_at = (draft.issued_at or now).astimezone(UTC)
    payload = dict(draft.payload)
    document = _document(
        schema_version=draft.schema_version,
        kind=ReceiptKind(draft.kind).value,
        tenant=tenant,
        subject=draft.subject,
        payload=payload,
        issued_at=issued_at,
        corrects_id=draft.corrects_id,
    )
    salt = new_salt()
    try:
        # Anything JCS accepts reads back from the JSON column as the same canonical bytes.
        digest = commitment(document, salt)
    except CanonicalizationError as error:
        raise InvalidReceipt(
            f"payload has no canonical JSON form: {error}",
            hint="Use strings for decimals, bytes and big integers; only finite numbers.",
        ) from error
    return _Prepared(
        id=uuid.uuid4(),
        draft=draft,
        tenant=tenant,
        payload=payload,
        issued_at=issued_at,
        document=document,
        salt=salt,
        commitment=digest,
        signature=signer.sign_commitment(digest),
    )


def _normalise_tenant(tenant: str) -> str:
    if tenant.startswith("wallet:"):
        tenant = tenant.lower()  # one spelling per address, whatever the checksum casing
    if not _TENANT.match(tenant):
        raise InvalidReceipt(
            f"tenant {tenant!r} is not 'system', 'provider:<id>' or 'wallet:0x<40 hex digits>'"
        )
    return tenant


def _check_corrections(session: Session, prepared: Sequence[_Prepared]) -> None:
    wanted = {item.draft.corrects_id for item in prepared if item.draft.corrects_id is not None}
    missing = wanted - ReceiptRepository(session).existing_ids(wanted)
    if missing:
        names = ", ".join(sorted(str(receipt_id) for receipt_id in missing))
        raise UnknownCorrectedReceipt(
            f"cannot correct unknown receipt(s) {names}",
            hint="A correction must reference an issued receipt's id.",
        )


# ------------------------------------------------------------------------ reading and proofs


def get_receipt(session: Session, receipt_id: uuid.UUID) -> Receipt:
    receipt = ReceiptRepository(session).get(receipt_id)
    if receipt is None:
        raise ReceiptNotFound(f"no receipt with id {receipt_id}")
    return receipt


def log_size(session: Session) -> int:
    return MerkleLogStateRepository(session).size()


def checkpoint(session: Session, signer: ReceiptSigner, now: datetime) -> SignedCheckpoint:
    """Sign and store (size, root, time) for the log as it stands; flush, never commit.

    A checkpoint already stored for this size is returned as it is (one per size).
    """
    store = DbNodeStore(session)
    signed = signer.sign_checkpoint(store.size, merkle_root(store), int(now.timestamp()))
    stored = LogCheckpointRepository(session).insert_if_absent(
        LogCheckpoint(
            size=signed.size,
            root=signed.root,
            timestamp=signed.timestamp,
            key_id=signed.key_id,
            signature=signed.signature_hex,
        )
    )
    session.flush()
    return _signed(stored)


def latest_checkpoint(session: Session) -> SignedCheckpoint | None:
    stored = LogCheckpointRepository(session).latest()
    return _signed(stored) if stored is not None else None


def _signed(stored: LogCheckpoint) -> SignedCheckpoint:
    return SignedCheckpoint(
        size=stored.size,
        root=stored.root,
        timestamp=stored.timestamp,
        key_id=stored.key_id,
        signature_hex=stored.signature,
    )


def inclusion_proof_for(
    session: Session, receipt_id: uuid.UUID, size: int | None = None
) -> InclusionProof:
    """The audit path of a receipt in the tree of `size` leaves (the current size by default)."""
    receipt = get_receipt(session, receipt_id)
    store = DbNodeStore(session)
    tree_size = store.size if size is None else size
    if not 0 < tree_size <= store.size:
        raise InvalidTreeSize(f"tree size {tree_size} is outside 1..{store.size}")
    if receipt.leaf_index >= tree_size:
        raise ReceiptNotInTree(
            f"receipt {receipt_id} is leaf {receipt.leaf_index}, after tree size {tree_size}",
            hint="Ask for a proof against a later checkpoint.",
        )
    return InclusionProof(
        receipt_id=receipt.id,
        leaf_index=receipt.leaf_index,
        tree_size=tree_size,
        leaf_hash=leaf_hash(receipt.commitment),
        path=inclusion_proof(store, receipt.leaf_index, tree_size),
    )


def consistency_proof_between(session: Session, first: int, second: int) -> ConsistencyProof:
    """The RFC 9162 proof that the tree of `first` leaves is a prefix of the one of `second`."""
    store = DbNodeStore(session)
    if not 0 < first <= second <= store.size:
        raise InvalidTreeSize(
            f"no consistency proof from {first} to {second}: need 0 < from <= to <= {store.size}"
        )
    return ConsistencyProof(first, second, consistency_proof(store, first, second))
