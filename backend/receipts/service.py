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
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from backend.config import Settings, get_settings
from backend.kit.columns import utcnow
from backend.receipts.canonical import CanonicalizationError, canonical_json
from backend.receipts.commitment import commitment_of_canonical, leaf_hash, new_salt
from backend.receipts.exceptions import (
    InvalidReceipt,
    InvalidTreeSize,
    ReceiptError,
    ReceiptNotFound,
    ReceiptNotInTree,
    UnknownCorrectedReceipt,
)
from backend.receipts.kinds import PayloadError, validate_payload
from backend.receipts.merkle import consistency_proof, hash_leaf, inclusion_proof, merkle_root
from backend.receipts.models import LogCheckpoint, Receipt, ReceiptKind
from backend.receipts.node_store import DbNodeStore, frontier_keys, new_complete_nodes
from backend.receipts.repository import (
    LogCheckpointRepository,
    MerkleLogStateRepository,
    MerkleNodeRepository,
    NewReceiptRow,
    ReceiptRepository,
)
from backend.receipts.signing import (
    ReceiptSigner,
    Signature,
    SignedCheckpoint,
    format_timestamp,
)

__all__ = [
    "ConsistencyProof",
    "InclusionProof",
    "InvalidReceipt",
    "InvalidTreeSize",
    "IssuedReceipt",
    "PreparedReceipt",
    "ReceiptDraft",
    "ReceiptError",
    "ReceiptNotFound",
    "ReceiptNotInTree",
    "UnknownCorrectedReceipt",
    "append_prepared",
    "checkpoint",
    "consistency_proof_between",
    "default_inclusion_delay",
    "format_issued_at",
    "get_receipt",
    "inclusion_proof_for",
    "issuance_of",
    "issue_receipt",
    "issue_receipts",
    "latest_checkpoint",
    "log_size",
    "prepare_receipts",
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
    return format_timestamp(moment)


def issuance_of(receipt: Receipt) -> Signature:
    """A stored receipt's issuance signature, with the times it signed (for bundles)."""
    return Signature(
        key_id=receipt.key_id,
        signature_hex=receipt.issuance_signature,
        issued_at=receipt.issued_at,
        include_by=receipt.include_by,
    )


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


def canonical_document(document: Mapping[str, Any], payload_jcs: bytes) -> bytes:
    """JCS(document) for a `_document` whose payload's JCS bytes are already made.

    The envelope's keys are fixed, so their RFC 8785 order is too (corrects, issued_at, kind,
    payload, subject, tenant, v); only the values need encoding, and the payload, the one part
    of any size, is spliced in rather than serialised a second time. Its JCS bytes are also what
    the JSON column stores. A test holds this equal to `canonical_json(document)`.
    """
    return b"".join(
        (
            b'{"corrects":',
            canonical_json(document["corrects"]),
            b',"issued_at":',
            canonical_json(document["issued_at"]),
            b',"kind":',
            canonical_json(document["kind"]),
            b',"payload":',
            payload_jcs,
            b',"subject":',
            canonical_json(document["subject"]),
            b',"tenant":',
            canonical_json(document["tenant"]),
            b',"v":',
            canonical_json(document["v"]),
            b"}",
        )
    )


# ------------------------------------------------------------------------------------ signing


def signer_from_settings(settings: Settings) -> ReceiptSigner:
    """The log's signer from `CREDAGG_RECEIPT_SIGNING_KEY` (a 64-hex Ed25519 seed)."""
    return ReceiptSigner(bytes.fromhex(settings.receipt_signing_key.get_secret_value()))


# ------------------------------------------------------------------------------------ issuing


def default_inclusion_delay() -> timedelta:
    """The promise given when the caller names none: `CREDAGG_ANCHOR_MAX_AGE_SECONDS`."""
    return timedelta(seconds=get_settings().anchor_max_age_seconds)


def issue_receipts(
    session: Session,
    drafts: Sequence[ReceiptDraft],
    *,
    signer: ReceiptSigner,
    max_inclusion_delay: timedelta | None = None,
) -> list[IssuedReceipt]:
    """Validate, commit to, sign and append `drafts` to the log, in order; flush, never commit.

    Each receipt is signed with the promise to be in a checkpoint by issued_at +
    `max_inclusion_delay` (the anchoring interval by default). Leaf indices are consecutive and
    assigned under the log-state lock, in the same transaction as the rows, so the caller's
    commit makes all of it durable or none of it. Any invalid draft refuses the whole batch.
    """
    return append_prepared(
        session,
        prepare_receipts(drafts, signer=signer, max_inclusion_delay=max_inclusion_delay),
    )


def prepare_receipts(
    drafts: Sequence[ReceiptDraft],
    *,
    signer: ReceiptSigner,
    max_inclusion_delay: timedelta | None = None,
) -> list[PreparedReceipt]:
    """The lock-free half of `issue_receipts`: validate, canonicalise, salt, commit to and sign
    each draft. Each receipt's id is fixed here, so a caller can store references to it before
    taking the log lock with `append_prepared` as the last step of its transaction."""
    if not drafts:
        return []
    delay = default_inclusion_delay() if max_inclusion_delay is None else max_inclusion_delay
    if delay < timedelta(0):
        raise ValueError(f"max_inclusion_delay must not be negative, got {delay}")
    now = utcnow()
    return [_prepare(draft, now, delay, signer) for draft in drafts]


def append_prepared(session: Session, prepared: Sequence[PreparedReceipt]) -> list[IssuedReceipt]:
    """The locked half of `issue_receipts`: append `prepared` to the log; flush, never commit.

    The log-state row stays locked until the caller's transaction ends, so everything a
    request still has to do should come before this call, and its commit right after.
    """
    if not prepared:
        return []
    _check_corrections(session, prepared)
    state = MerkleLogStateRepository(session)
    new_size = state.advance_size(len(prepared))  # takes the row lock: one round trip
    old_size = new_size - len(prepared)
    ReceiptRepository(session).insert_many(
        [
            NewReceiptRow(
                id=item.id,
                leaf_index=old_size + offset,
                kind=item.kind,
                schema_version=item.draft.schema_version,
                tenant=item.tenant,
                subject=item.draft.subject,
                payload=item.payload,
                payload_json=item.payload_json,
                issued_at=item.signature.issued_at,
                include_by=item.signature.include_by,
                corrects_id=item.draft.corrects_id,
                salt=item.salt,
                commitment=item.commitment,
                key_id=item.signature.key_id,
                issuance_signature=item.signature.signature_hex,
            )
            for offset, item in enumerate(prepared)
        ]
    )
    nodes = MerkleNodeRepository(session)
    frontier = nodes.get_hashes(frontier_keys(old_size, new_size))
    leaves = [hash_leaf(item.commitment) for item in prepared]
    nodes.insert_many(new_complete_nodes(old_size, leaves, frontier))
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


@dataclass(frozen=True, slots=True)
class PreparedReceipt:
    """A receipt made and signed but not yet in the log (see `prepare_receipts`)."""

    id: uuid.UUID
    draft: ReceiptDraft
    kind: str
    tenant: str
    payload: dict[str, Any]
    payload_json: str  # its JCS text, made once: hashed inside the document and stored
    document: dict[str, Any]
    salt: bytes
    commitment: bytes
    signature: Signature


def issue_receipt(
    session: Session,
    draft: ReceiptDraft,
    *,
    signer: ReceiptSigner,
    max_inclusion_delay: timedelta | None = None,
) -> IssuedReceipt:
    """`issue_receipts` for the common case of one receipt (a domain's single decision)."""
    [issued] = issue_receipts(
        session, [draft], signer=signer, max_inclusion_delay=max_inclusion_delay
    )
    return issued


def _prepare(
    draft: ReceiptDraft, now: datetime, delay: timedelta, signer: ReceiptSigner
) -> PreparedReceipt:
    """Everything that needs no lock: checks, canonical bytes (made once), salt, signature."""
    tenant = _normalise_tenant(draft.tenant)
    if not isinstance(draft.subject, str) or not 0 < len(draft.subject) <= 255:
        raise InvalidReceipt(
            f"subject must be 1 to 255 characters, got {len(draft.subject)}",
            hint="Name what the receipt is about, e.g. 'loan:<id>' or 'credit_request:<id>'.",
        )
    version = draft.schema_version
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidReceipt(f"schema_version must be a positive integer, not {version!r}")
    if not isinstance(draft.payload, Mapping):
        raise InvalidReceipt("payload must be a JSON object")
    if draft.issued_at is not None and draft.issued_at.tzinfo is None:
        raise InvalidReceipt("issued_at must be an aware (UTC) datetime")
    try:
        kind = ReceiptKind(draft.kind).value
    except ValueError:
        raise InvalidReceipt(
            f"kind {draft.kind!r} is not one of {', '.join(k.value for k in ReceiptKind)}"
        ) from None
    payload = dict(draft.payload)
    try:
        validate_payload(kind, version, payload)
    except PayloadError as error:
        raise InvalidReceipt(
            f"{kind} receipt (schema v{version}) is invalid at {error}",
            hint=f"See backend/receipts/kinds.py for the {kind} v{version} payload schema.",
        ) from error
    issued_at = (draft.issued_at or now).astimezone(UTC)
    document = _document(
        schema_version=version,
        kind=kind,
        tenant=tenant,
        subject=draft.subject,
        payload=payload,
        issued_at=issued_at,
        corrects_id=draft.corrects_id,
    )
    salt = new_salt()
    try:
        # Anything JCS accepts reads back from the JSON column as the same canonical bytes.
        payload_jcs = canonical_json(payload)
        digest = commitment_of_canonical(canonical_document(document, payload_jcs), salt)
    except CanonicalizationError as error:
        raise InvalidReceipt(
            f"payload has no canonical JSON form: {error}",
            hint="Use strings for decimals, bytes and big integers; only finite numbers.",
        ) from error
    signature = signer.sign_commitment(digest, issued_at=issued_at, include_by=issued_at + delay)
    return PreparedReceipt(
        id=uuid.uuid4(),
        draft=draft,
        kind=kind,
        tenant=tenant,
        payload=payload,
        payload_json=payload_jcs.decode("utf-8"),
        document=document,
        salt=salt,
        commitment=digest,
        signature=signature,
    )


def _normalise_tenant(tenant: str) -> str:
    if tenant.startswith("wallet:"):
        tenant = tenant.lower()  # one spelling per address, whatever the checksum casing
    if not _TENANT.match(tenant):
        raise InvalidReceipt(
            f"tenant {tenant!r} is not 'system', 'provider:<id>' or 'wallet:0x<40 hex digits>'"
        )
    return tenant


def _check_corrections(session: Session, prepared: Sequence[PreparedReceipt]) -> None:
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
    store.preload(merkle_root)
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
    store.preload(lambda plan: inclusion_proof(plan, receipt.leaf_index, tree_size))
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
    store.preload(lambda plan: consistency_proof(plan, first, second))
    return ConsistencyProof(first, second, consistency_proof(store, first, second))
