"""API shapes of the receipts domain.

Bundles, checkpoint files and consistency proofs are served in exactly the JSON form the
offline tools read (`backend.receipts.bundle`): what an auditor downloads is what
`credagg verify` / `credagg consistency` take, byte for byte. The models here describe that form
in the OpenAPI document and check every response against it.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field

HEX32 = r"^0x[0-9a-f]{64}$"


class IssuanceOut(BaseModel):
    """The log's signed promise, given at issue time, to include the receipt by `include_by`."""

    key_id: str
    signature: str = Field(description="Ed25519 signature (credagg-issuance/v2), 0x-hex.")
    issued_at: str
    include_by: str


class ReceiptOut(BaseModel):
    """A stored receipt with what its tenant needs to check it alone: the committed document,
    the salt and the issuance signature."""

    id: uuid.UUID
    kind: str
    schema_version: int
    tenant: str
    subject: str
    issued_at: str
    corrects: uuid.UUID | None
    leaf_index: int
    document: dict[str, Any] = Field(description="The object whose RFC 8785 form is committed.")
    salt: str = Field(pattern=HEX32)
    commitment: str = Field(pattern=HEX32)
    issuance: IssuanceOut


class ReceiptPage(BaseModel):
    items: list[ReceiptOut]
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null when this page is the last."
    )


class CheckpointOut(BaseModel):
    size: int
    root: str = Field(pattern=HEX32)
    timestamp: int
    key_id: str
    signature: str


class AnchorOut(BaseModel):
    chain_id: int
    contract: str
    tx_hash: str = Field(pattern=HEX32)
    block_number: int
    block_hash: str = Field(pattern=HEX32)


class ProofBundleOut(BaseModel):
    """`credagg-proof/v1`: save it as a file and run `credagg verify FILE --rpc URL --pubkey K`."""

    model_config = {"extra": "allow"}  # the bundle module owns the format; new fields pass through

    version: str
    receipt: dict[str, Any]
    salt: str
    issuance: IssuanceOut
    leaf_index: int
    tree_size: int
    audit_path: list[str]
    checkpoint: CheckpointOut
    anchors: list[AnchorOut]
    issuer_key_id: str


class CheckpointFileOut(CheckpointOut):
    """A signed checkpoint, where it is anchored, and optionally the consistency proof from an
    earlier size: the file `credagg consistency OLD NEW --rpc URL` takes."""

    anchors: list[AnchorOut]
    consistency_from: int | None = None
    consistency_proof: list[str] | None = None


class ConsistencyOut(BaseModel):
    version: str
    from_: int = Field(alias="from")
    to: int
    proof: list[str]

    model_config = {"populate_by_name": True}
