"""Proof bundles and checkpoint files: exact round trips; strict parsing that names the field."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.receipts.bundle import (
    BUNDLE_VERSION,
    Anchor,
    BundleError,
    CheckpointFile,
    ConsistencyProof,
    ProofBundle,
    build_bundle,
    dump_bundle,
    dump_checkpoint_file,
    dump_consistency_proof,
    parse_bundle,
    parse_checkpoint_file,
    parse_consistency_proof,
)
from backend.receipts.commitment import commitment
from backend.receipts.merkle import MemoryNodeStore, consistency_proof, merkle_root
from backend.receipts.signing import ReceiptSigner, format_timestamp

SIGNER = ReceiptSigner(bytes(range(32)))
ISSUED_AT = datetime(2023, 11, 14, 22, 10, tzinfo=UTC)  # checkpoints below are 22:13:20
INCLUDE_BY = ISSUED_AT + timedelta(minutes=10)


def make_log(
    size: int, *, fork_at: int | None = None
) -> tuple[MemoryNodeStore, list[dict[str, object]], list[bytes]]:
    """A log of `size` receipts with deterministic salts; `fork_at` changes one receipt."""
    store, receipts, salts = MemoryNodeStore(), [], []
    for i in range(size):
        receipt: dict[str, object] = {
            "type": "repayment",
            "seq": i,
            "amount": str(1000 + i),
            "issued_at": format_timestamp(ISSUED_AT),
        }
        if i == fork_at:
            receipt["amount"] = "forged"
        salt = hashlib.sha256(b"salt" + i.to_bytes(4, "big")).digest()
        store.append(commitment(receipt, salt))
        receipts.append(receipt)
        salts.append(salt)
    return store, receipts, salts


def make_bundle(
    store: MemoryNodeStore,
    receipts: list[dict[str, object]],
    salts: list[bytes],
    index: int,
    size: int,
    anchors: tuple[Anchor, ...] = (),
    signer: ReceiptSigner = SIGNER,
    include_by: datetime = INCLUDE_BY,
) -> ProofBundle:
    checkpoint = signer.sign_checkpoint(size, merkle_root(store, size), 1_700_000_000)
    return build_bundle(
        store,
        receipt=receipts[index],
        salt=salts[index],
        leaf_index=index,
        issuance=signer.sign_commitment(
            store.leaf(index), issued_at=ISSUED_AT, include_by=include_by
        ),
        checkpoint=checkpoint,
        anchors=anchors,
    )


ANCHOR = Anchor(31337, "0x" + "ab" * 20, b"\x01" * 32, 7, b"\x02" * 32)


@pytest.fixture(scope="module")
def bundle_json() -> dict[str, Any]:
    store, receipts, salts = make_log(13)
    return json.loads(dump_bundle(make_bundle(store, receipts, salts, 6, 13, (ANCHOR,))))


def test_the_bundle_format_is_versioned_hex_prefixed_and_round_trips(
    bundle_json: dict[str, Any],
) -> None:
    assert bundle_json["version"] == BUNDLE_VERSION
    assert set(bundle_json) == {
        "version", "receipt", "salt", "issuance", "leaf_index", "tree_size", "audit_path",
        "checkpoint", "anchors", "issuer_key_id",
    }  # fmt: skip
    assert bundle_json["issuer_key_id"] == SIGNER.key_id
    assert str(bundle_json["salt"]).startswith("0x")
    assert all(str(node).startswith("0x") for node in bundle_json["audit_path"])  # type: ignore[attr-defined]
    text = json.dumps(bundle_json)
    assert json.loads(dump_bundle(parse_bundle(text))) == bundle_json


@settings(max_examples=25, deadline=None)
@given(size=st.integers(1, 40), data=st.data())
def test_any_leaf_of_any_size_round_trips(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, size - 1))
    store, receipts, salts = make_log(size)
    bundle = make_bundle(store, receipts, salts, index, size)
    assert parse_bundle(dump_bundle(bundle)) == bundle
    assert bundle.receipt == receipts[index]


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("version",), "credagg-proof/v0", "version"),
        (("salt",), "0x" + "00" * 31, "salt"),
        (("salt",), "00" * 32, "salt"),
        (("audit_path", 1), "0x" + "zz" * 32, "audit_path[1]"),
        (("checkpoint", "root"), "0x1234", "checkpoint.root"),
        (("checkpoint", "size"), -1, "checkpoint.size"),
        (("issuance", "signature"), "0x00", "issuance.signature"),
        (("issuance", "issued_at"), "2023-11-14T22:10:00Z", "issuance.issued_at"),
        (("issuance", "include_by"), 1700000000, "issuance.include_by"),
        (("issuance", "include_by"), "2023-11-14T22:09:59.999999Z", "issuance.include_by"),
        (("leaf_index",), 13, "leaf_index"),
        (("tree_size",), True, "tree_size"),
        (("anchors", 0, "contract"), "0x1234", "anchors[0].contract"),
        (("anchors", 0, "chain_id"), "31337", "anchors[0].chain_id"),
        (("receipt",), [1, 2], "receipt"),
        (("receipt",), {"x": 1.5e300 * 1e10}, "$"),  # inf: not JSON at all
    ],
)
def test_a_bad_field_is_named(
    bundle_json: dict[str, Any], path: tuple[str | int, ...], value: object, field: str
) -> None:
    document = json.loads(json.dumps(bundle_json))
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(BundleError) as error:
        parse_bundle(json.dumps(document))
    assert error.value.field == field, str(error.value)


def test_missing_and_unknown_keys_and_duplicates_are_refused(bundle_json: dict[str, Any]) -> None:
    document = dict(bundle_json)
    del document["salt"]
    with pytest.raises(BundleError, match=r"^salt: missing"):
        parse_bundle(json.dumps(document))
    with pytest.raises(BundleError, match=r"^extra: unknown"):
        parse_bundle(json.dumps({**bundle_json, "extra": 1}))
    text = json.dumps(bundle_json)
    with pytest.raises(BundleError, match="duplicate"):
        parse_bundle(text[:-1] + ', "salt": "0x00"}')
    with pytest.raises(BundleError, match=r"^\$: not JSON"):
        parse_bundle(text[:-2])


def test_checkpoint_files_and_consistency_proofs_round_trip() -> None:
    store, _, _ = make_log(50)
    old = SIGNER.sign_checkpoint(20, merkle_root(store, 20), 1)
    new = SIGNER.sign_checkpoint(50, merkle_root(store, 50), 2)
    proof = ConsistencyProof(20, 50, tuple(consistency_proof(store, 20, 50)))
    with_proof = CheckpointFile(new, (ANCHOR,), proof)
    assert parse_checkpoint_file(dump_checkpoint_file(with_proof)) == with_proof
    assert parse_checkpoint_file(dump_checkpoint_file(CheckpointFile(old))) == CheckpointFile(old)
    assert parse_consistency_proof(dump_consistency_proof(proof)) == proof
    document = json.loads(dump_checkpoint_file(with_proof))
    del document["consistency_proof"]
    with pytest.raises(BundleError, match="consistency_proof"):
        parse_checkpoint_file(json.dumps(document))


def test_a_bundle_is_accepted_where_a_checkpoint_file_is(bundle_json: dict[str, Any]) -> None:
    parsed = parse_checkpoint_file(json.dumps(bundle_json))
    assert parsed.checkpoint.size == 13
    assert parsed.anchors == (ANCHOR,)
