"""HTTP API of the receipts log.

Receipts and their proof bundles are private to their tenant (the wallet or provider the
receipt is about) and to auditors. Checkpoints and consistency proofs are public, as a
Certificate Transparency log's are: they reveal only sizes and roots (leaves are salted), and
anyone must be able to watch the log for split views without an account.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from backend.auth.deps import CurrentPrincipal
from backend.config import Settings
from backend.db import SessionDep
from backend.exceptions import Unauthorized, error_responses
from backend.kit.columns import DB_INT_MAX, utcnow
from backend.receipts import bundle as bundle_format
from backend.receipts.exceptions import InvalidTreeSize, ReceiptNotFound, ReceiptNotInTree
from backend.receipts.models import Receipt, ReceiptKind
from backend.receipts.publication import (
    VisibleReceipts,
    checkpoint_file,
    consistency_file,
    proof_bundle,
    visible_receipt,
)
from backend.receipts.schemas import (
    CheckpointFileOut,
    ConsistencyOut,
    IssuanceOut,
    ProofBundleOut,
    ReceiptOut,
    ReceiptPage,
)
from backend.receipts.service import format_issued_at, receipt_document, signer_from_settings

router = APIRouter(tags=["receipts"])


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.get(
    "/v1/receipts",
    response_model=ReceiptPage,
    summary="List your receipts",
    responses=error_responses(Unauthorized, validation=True),
)
def list_receipts(
    session: SessionDep,
    principal: CurrentPrincipal,
    after: Annotated[
        int | None, Query(ge=-1, le=DB_INT_MAX, description="Leaf index to start after.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    kind: ReceiptKind | None = None,
    subject: Annotated[str | None, Query(max_length=255)] = None,
) -> ReceiptPage:
    """Your receipts in log order (an auditor's: everyone's), `limit` at a time."""
    rows = VisibleReceipts(session, tenant=principal.tenant).page(
        after=after, limit=limit, kind=kind.value if kind else None, subject=subject
    )
    next_after = rows[-1].leaf_index if len(rows) == limit else None
    return ReceiptPage(items=[_receipt_out(row) for row in rows], next_after=next_after)


@router.get(
    "/v1/receipts/{receipt_id}",
    response_model=ReceiptOut,
    summary="One receipt",
    responses=error_responses(Unauthorized, ReceiptNotFound, validation=True),
)
def get_receipt(
    receipt_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> ReceiptOut:
    """The receipt, to its wallet or provider or an auditor (404 to anyone else)."""
    return _receipt_out(visible_receipt(session, receipt_id, tenant=principal.tenant))


@router.get(
    "/v1/receipts/{receipt_id}/proof",
    response_model=ProofBundleOut,
    summary="Proof bundle of one receipt",
    responses=error_responses(
        Unauthorized, ReceiptNotFound, ReceiptNotInTree, InvalidTreeSize, validation=True
    ),
)
def get_proof(
    receipt_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    size: Annotated[
        int | None, Query(ge=1, le=DB_INT_MAX, description="Prove against this tree size.")
    ] = None,
) -> Any:
    """The self-contained proof bundle: save it and run `credagg verify` (no account needed
    then). Without `size` it proves against the first anchored (preferably final) size; if
    nothing covering the receipt is anchored yet, against the latest checkpoint, with no
    anchors (`credagg verify` exits 2: ask again after the next anchoring)."""
    receipt = visible_receipt(session, receipt_id, tenant=principal.tenant)
    signer = signer_from_settings(_settings(request))
    bundle = proof_bundle(session, receipt, signer=signer, now=utcnow(), tree_size=size)
    return json.loads(bundle_format.dump_bundle(bundle))


@router.get(
    "/v1/log/checkpoint",
    response_model=CheckpointFileOut,
    response_model_exclude_none=True,
    summary="Signed checkpoint of the log (public)",
    responses=error_responses(InvalidTreeSize, validation=True),
)
def get_checkpoint(
    request: Request,
    session: SessionDep,
    size: Annotated[
        int | None, Query(ge=1, le=DB_INT_MAX, description="A stored checkpoint's size.")
    ] = None,
    from_: Annotated[
        int | None,
        Query(
            alias="from",
            ge=1,
            le=DB_INT_MAX,
            description="Include the consistency proof from this size.",
        ),
    ] = None,
) -> Any:
    """The latest signed checkpoint (or the one of `size`) with the chains it is anchored on;
    with `from`, also the proof that the log of `from` leaves is its prefix."""
    signer = signer_from_settings(_settings(request))
    document = checkpoint_file(
        session, signer=signer, now=utcnow(), tree_size=size, consistency_from=from_
    )
    return json.loads(bundle_format.dump_checkpoint_file(document))


@router.get(
    "/v1/log/consistency",
    response_model=ConsistencyOut,
    summary="Consistency proof between two tree sizes (public)",
    responses=error_responses(InvalidTreeSize, validation=True),
)
def get_consistency(
    session: SessionDep,
    from_: Annotated[int, Query(alias="from", ge=1, le=DB_INT_MAX)],
    to: Annotated[int, Query(ge=1, le=DB_INT_MAX)],
) -> Any:
    """RFC 9162 proof that the tree of `from` leaves is a prefix of the tree of `to` leaves."""
    return json.loads(bundle_format.dump_consistency_proof(consistency_file(session, from_, to)))


def _receipt_out(row: Receipt) -> ReceiptOut:
    return ReceiptOut(
        id=row.id,
        kind=row.kind,
        schema_version=row.schema_version,
        tenant=row.tenant,
        subject=row.subject,
        issued_at=format_issued_at(row.issued_at),
        corrects=row.corrects_id,
        leaf_index=row.leaf_index,
        document=receipt_document(row),
        salt="0x" + row.salt.hex(),
        commitment="0x" + row.commitment.hex(),
        issuance=IssuanceOut(
            key_id=row.key_id,
            signature="0x" + row.issuance_signature.lower(),
            issued_at=format_issued_at(row.issued_at),
            include_by=format_issued_at(row.include_by),
        ),
    )
