"""The proof bundle: everything an auditor needs to verify one receipt, in one JSON file.

A bundle is self-contained on purpose: receipt, salt, issuance signature (with the issue time
and the promised include-by time it signs), leaf index, audit path, signed checkpoint and
on-chain anchors. With it, a pinned public key and any RPC endpoint of the
anchoring chains, a verifier needs nothing of ours (see `verifier.py`).

Parsing is strict and names the bad field: a verifier that guessed at a malformed bundle could be
talked into accepting something no one signed. Every byte string is `0x`-prefixed hex, so a
bundle reads the same way in every language and next to block explorers.

Checkpoint files (for `credagg consistency`) share the bundle's checkpoint object and may add
`anchors`, `consistency_from` and `consistency_proof`; consistency proof files have their own
small format. Both are parsed here so the verifier has one place where untrusted JSON enters.

Only the standard library and the receipts core are imported (the verifier runs alone).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from backend.receipts.canonical import CanonicalizationError, canonical_json, loads_json
from backend.receipts.commitment import SALT_SIZE
from backend.receipts.merkle import HASH_SIZE, NodeStore, inclusion_proof
from backend.receipts.signing import (
    Signature,
    SignedCheckpoint,
    format_timestamp,
    parse_timestamp,
)

__all__ = [
    "BUNDLE_VERSION",
    "CONSISTENCY_VERSION",
    "Anchor",
    "BundleError",
    "CheckpointFile",
    "ConsistencyProof",
    "ProofBundle",
    "build_bundle",
    "checkpoint_to_json",
    "dump_bundle",
    "dump_checkpoint_file",
    "dump_consistency_proof",
    "parse_bundle",
    "parse_checkpoint_file",
    "parse_consistency_proof",
]

BUNDLE_VERSION = "credagg-proof/v2"  # v2: the issuance object signs issued_at and include_by
CONSISTENCY_VERSION = "credagg-consistency/v1"
SIGNATURE_SIZE = 64
ADDRESS_SIZE = 20
MAX_UINT64 = 2**64 - 1  # the contract stores sizes and block numbers as uint64


class BundleError(ValueError):
    """A bundle or checkpoint file is malformed; the message names the field and what is wrong."""

    def __init__(self, field_name: str, problem: str) -> None:
        self.field = field_name
        super().__init__(f"{field_name}: {problem}")


@dataclass(frozen=True)
class Anchor:
    """Where a checkpoint's (size, root) was written on-chain, as the bundle claims it."""

    chain_id: int
    contract: str  # 0x + 40 lowercase hex digits
    tx_hash: bytes
    block_number: int
    block_hash: bytes


@dataclass(frozen=True)
class ProofBundle:
    """A parsed `credagg-proof/v2` bundle; byte fields are bytes, not hex."""

    receipt: dict[str, object]
    salt: bytes
    issuance: Signature
    leaf_index: int
    tree_size: int
    audit_path: tuple[bytes, ...]
    checkpoint: SignedCheckpoint
    anchors: tuple[Anchor, ...]
    issuer_key_id: str
    version: str = BUNDLE_VERSION


@dataclass(frozen=True)
class ConsistencyProof:
    """RFC 9162 PROOF(first, D[second]): that the tree of `first` leaves is a prefix of `second`."""

    first: int
    second: int
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class CheckpointFile:
    """A signed checkpoint as an auditor keeps it, with where it was anchored and, optionally,
    the consistency proof from an earlier size (so one file can prove the log only grew)."""

    checkpoint: SignedCheckpoint
    anchors: tuple[Anchor, ...] = ()
    consistency: ConsistencyProof | None = field(default=None)


# ----------------------------------------------------------------------------------- building


def build_bundle(
    store: NodeStore,
    *,
    receipt: Mapping[str, object],
    salt: bytes,
    leaf_index: int,
    issuance: Signature,
    checkpoint: SignedCheckpoint,
    anchors: Sequence[Anchor] = (),
) -> ProofBundle:
    """A bundle proving `receipt` is leaf `leaf_index` of the tree the checkpoint signs.

    The audit path is computed at the checkpoint's size from `store`; the result is round-tripped
    through JSON so what we hand out is exactly what `parse_bundle` accepts.
    """
    preload = getattr(store, "preload", None)  # a database store reads its rows in one go
    if callable(preload):
        preload(lambda plan: inclusion_proof(plan, leaf_index, checkpoint.size))
    path = inclusion_proof(store, leaf_index, checkpoint.size)
    bundle = ProofBundle(
        receipt=dict(receipt),
        salt=salt,
        issuance=issuance,
        leaf_index=leaf_index,
        tree_size=checkpoint.size,
        audit_path=tuple(path),
        checkpoint=checkpoint,
        anchors=tuple(anchors),
        issuer_key_id=issuance.key_id,
    )
    return parse_bundle(dump_bundle(bundle))


# ----------------------------------------------------------------------------------- dumping


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def checkpoint_to_json(checkpoint: SignedCheckpoint) -> dict[str, object]:
    """The checkpoint object shared by bundles, checkpoint files and the API."""
    return {
        "size": checkpoint.size,
        "root": _hex(checkpoint.root),
        "timestamp": checkpoint.timestamp,
        "key_id": checkpoint.key_id,
        "signature": "0x" + checkpoint.signature_hex.lower(),
    }


def _anchor_to_json(anchor: Anchor) -> dict[str, object]:
    return {
        "chain_id": anchor.chain_id,
        "contract": anchor.contract,
        "tx_hash": _hex(anchor.tx_hash),
        "block_number": anchor.block_number,
        "block_hash": _hex(anchor.block_hash),
    }


def dump_bundle(bundle: ProofBundle) -> str:
    """Pretty JSON with a stable key order (for diffs and humans; nothing hashes this text)."""
    document = {
        "version": bundle.version,
        "receipt": bundle.receipt,
        "salt": _hex(bundle.salt),
        "issuance": {
            "key_id": bundle.issuance.key_id,
            "signature": "0x" + bundle.issuance.signature_hex.lower(),
            "issued_at": format_timestamp(bundle.issuance.issued_at),
            "include_by": format_timestamp(bundle.issuance.include_by),
        },
        "leaf_index": bundle.leaf_index,
        "tree_size": bundle.tree_size,
        "audit_path": [_hex(node) for node in bundle.audit_path],
        "checkpoint": checkpoint_to_json(bundle.checkpoint),
        "anchors": [_anchor_to_json(anchor) for anchor in bundle.anchors],
        "issuer_key_id": bundle.issuer_key_id,
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def dump_checkpoint_file(checkpoint_file: CheckpointFile) -> str:
    document: dict[str, object] = dict(checkpoint_to_json(checkpoint_file.checkpoint))
    document["anchors"] = [_anchor_to_json(anchor) for anchor in checkpoint_file.anchors]
    if checkpoint_file.consistency is not None:
        if checkpoint_file.consistency.second != checkpoint_file.checkpoint.size:
            raise ValueError("the embedded consistency proof must end at the checkpoint's size")
        document["consistency_from"] = checkpoint_file.consistency.first
        document["consistency_proof"] = [_hex(p) for p in checkpoint_file.consistency.proof]
    return json.dumps(document, indent=2) + "\n"


def dump_consistency_proof(proof: ConsistencyProof) -> str:
    document = {
        "version": CONSISTENCY_VERSION,
        "from": proof.first,
        "to": proof.second,
        "proof": [_hex(p) for p in proof.proof],
    }
    return json.dumps(document, indent=2) + "\n"


# ----------------------------------------------------------------------------------- parsing

_BUNDLE_KEYS = {
    "version",
    "receipt",
    "salt",
    "issuance",
    "leaf_index",
    "tree_size",
    "audit_path",
    "checkpoint",
    "anchors",
    "issuer_key_id",
}
_CHECKPOINT_KEYS = {"size", "root", "timestamp", "key_id", "signature"}
_CHECKPOINT_FILE_KEYS = _CHECKPOINT_KEYS | {"anchors", "consistency_from", "consistency_proof"}
_ANCHOR_KEYS = {"chain_id", "contract", "tx_hash", "block_number", "block_hash"}


def parse_bundle(text: str | bytes) -> ProofBundle:
    """Parse and validate a bundle; raise `BundleError` naming the first bad field."""
    document = _object(_load(text), "$")
    _exact_keys(document, _BUNDLE_KEYS, "$")
    if document["version"] != BUNDLE_VERSION:
        raise BundleError("version", f"expected {BUNDLE_VERSION!r}, got {document['version']!r}")
    receipt = _object(document["receipt"], "receipt")
    try:
        canonical_json(receipt)
    except CanonicalizationError as error:
        raise BundleError("receipt", str(error)) from error
    issuance = _object(document["issuance"], "issuance")
    _exact_keys(issuance, {"key_id", "signature", "issued_at", "include_by"}, "issuance")
    signature = Signature(
        key_id=_key_id(issuance["key_id"], "issuance.key_id"),
        signature_hex=_hex_bytes(issuance["signature"], SIGNATURE_SIZE, "issuance.signature").hex(),
        issued_at=_time(issuance["issued_at"], "issuance.issued_at"),
        include_by=_time(issuance["include_by"], "issuance.include_by"),
    )
    if signature.include_by < signature.issued_at:
        raise BundleError("issuance.include_by", "is before issuance.issued_at")
    tree_size = _uint(document["tree_size"], "tree_size", minimum=1)
    leaf_index = _uint(document["leaf_index"], "leaf_index")
    if leaf_index >= tree_size:
        raise BundleError("leaf_index", f"{leaf_index} is not below tree_size {tree_size}")
    path = _list(document["audit_path"], "audit_path")
    return ProofBundle(
        receipt=receipt,
        salt=_hex_bytes(document["salt"], SALT_SIZE, "salt"),
        issuance=signature,
        leaf_index=leaf_index,
        tree_size=tree_size,
        audit_path=tuple(
            _hex_bytes(node, HASH_SIZE, f"audit_path[{i}]") for i, node in enumerate(path)
        ),
        checkpoint=_checkpoint(_object(document["checkpoint"], "checkpoint"), "checkpoint"),
        anchors=_anchors(document["anchors"], "anchors"),
        issuer_key_id=_key_id(document["issuer_key_id"], "issuer_key_id"),
        version=BUNDLE_VERSION,
    )


def parse_checkpoint_file(text: str | bytes) -> CheckpointFile:
    """A checkpoint file, or a whole proof bundle (its checkpoint and anchors are used), so an
    auditor can compare the checkpoints of two bundles directly."""
    document = _object(_load(text), "$")
    if "version" in document:
        bundle = parse_bundle(text)
        return CheckpointFile(bundle.checkpoint, bundle.anchors)
    _exact_keys(document, _CHECKPOINT_KEYS, "$", optional=_CHECKPOINT_FILE_KEYS - _CHECKPOINT_KEYS)
    checkpoint = _checkpoint({k: document[k] for k in _CHECKPOINT_KEYS}, "$")
    anchors = _anchors(document.get("anchors", []), "anchors")
    has_from, has_proof = "consistency_from" in document, "consistency_proof" in document
    if has_from != has_proof:
        raise BundleError("consistency_proof", "give consistency_from and consistency_proof both")
    consistency = None
    if has_from:
        first = _uint(document["consistency_from"], "consistency_from", minimum=1)
        nodes = _list(document["consistency_proof"], "consistency_proof")
        consistency = ConsistencyProof(
            first,
            checkpoint.size,
            tuple(
                _hex_bytes(node, HASH_SIZE, f"consistency_proof[{i}]")
                for i, node in enumerate(nodes)
            ),
        )
    return CheckpointFile(checkpoint, anchors, consistency)


def parse_consistency_proof(text: str | bytes) -> ConsistencyProof:
    """A `credagg-consistency/v1` file: {"version", "from", "to", "proof": [hex...]}."""
    document = _object(_load(text), "$")
    _exact_keys(document, {"version", "from", "to", "proof"}, "$")
    if document["version"] != CONSISTENCY_VERSION:
        raise BundleError(
            "version", f"expected {CONSISTENCY_VERSION!r}, got {document['version']!r}"
        )
    nodes = _list(document["proof"], "proof")
    return ConsistencyProof(
        _uint(document["from"], "from", minimum=1),
        _uint(document["to"], "to", minimum=1),
        tuple(_hex_bytes(node, HASH_SIZE, f"proof[{i}]") for i, node in enumerate(nodes)),
    )


def _load(text: str | bytes) -> object:
    try:
        return loads_json(text)
    except CanonicalizationError as error:
        raise BundleError("$", str(error)) from error


def _object(value: object, name: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise BundleError(name, f"expected a JSON object, got {type(value).__name__}")
    return value


def _list(value: object, name: str) -> list[object]:
    if not isinstance(value, list):
        raise BundleError(name, f"expected a JSON array, got {type(value).__name__}")
    return value


def _exact_keys(
    document: Mapping[str, object],
    required: set[str],
    name: str,
    optional: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Unknown keys are refused: a field the verifier ignores is a field an attacker can use."""
    prefix = "" if name == "$" else f"{name}."
    missing = sorted(required - document.keys())
    if missing:
        raise BundleError(prefix + missing[0], "missing")
    unknown = sorted(document.keys() - required - optional)
    if unknown:
        raise BundleError(prefix + unknown[0], "unknown field (this verifier reads v2 bundles)")


def _uint(value: object, name: str, *, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise BundleError(name, f"expected an integer, got {value!r}")
    if not minimum <= value <= MAX_UINT64:
        raise BundleError(name, f"{value} is outside {minimum}..2**64-1")
    return value


def _time(value: object, name: str) -> datetime:
    try:
        return parse_timestamp(value)  # type: ignore[arg-type]  # checked inside
    except ValueError as error:
        raise BundleError(name, str(error)) from error


def _key_id(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise BundleError(name, f"expected a non-empty string, got {value!r}")
    return value


def _hex_bytes(value: object, size: int, name: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise BundleError(name, f"expected 0x-prefixed hex, got {value!r}")
    digits = value[2:]
    if len(digits) != 2 * size:
        raise BundleError(name, f"expected {size} bytes ({2 * size} hex digits), got {value!r}")
    try:
        return bytes.fromhex(digits)
    except ValueError as error:
        raise BundleError(name, f"not hex: {value!r}") from error


def _checkpoint(document: dict[str, object], name: str) -> SignedCheckpoint:
    prefix = "checkpoint." if name == "checkpoint" else ""
    _exact_keys(document, _CHECKPOINT_KEYS, name)
    return SignedCheckpoint(
        size=_uint(document["size"], prefix + "size", minimum=1),
        root=_hex_bytes(document["root"], HASH_SIZE, prefix + "root"),
        timestamp=_uint(document["timestamp"], prefix + "timestamp"),
        key_id=_key_id(document["key_id"], prefix + "key_id"),
        signature_hex=_hex_bytes(document["signature"], SIGNATURE_SIZE, prefix + "signature").hex(),
    )


def _anchors(value: object, name: str) -> tuple[Anchor, ...]:
    anchors = []
    for i, item in enumerate(_list(value, name)):
        where = f"{name}[{i}]"
        document = _object(item, where)
        _exact_keys(document, _ANCHOR_KEYS, where)
        anchors.append(
            Anchor(
                chain_id=_uint(document["chain_id"], f"{where}.chain_id", minimum=1),
                contract="0x"
                + _hex_bytes(document["contract"], ADDRESS_SIZE, f"{where}.contract").hex(),
                tx_hash=_hex_bytes(document["tx_hash"], HASH_SIZE, f"{where}.tx_hash"),
                block_number=_uint(document["block_number"], f"{where}.block_number"),
                block_hash=_hex_bytes(document["block_hash"], HASH_SIZE, f"{where}.block_hash"),
            )
        )
    return tuple(anchors)
