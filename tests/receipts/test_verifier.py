"""The verifier's offline logic and its isolation; chain reads are covered in test_verify_cli."""

from __future__ import annotations

import sys
from dataclasses import replace

from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.receipts.bundle import CheckpointFile, ConsistencyProof
from backend.receipts.merkle import consistency_proof, merkle_root
from backend.receipts.signing import Signature
from backend.receipts.verifier import (
    ANCHORED_TOPIC,
    ROOT_AT_SELECTOR,
    verify_bundle,
    verify_consistency_checkpoints,
)
from tests.receipts.test_bundle import SIGNER, make_bundle, make_log
from tests.receipts.test_isolation import ALLOWED, loaded_after

KEY = SIGNER.public_key_bytes
STORE, RECEIPTS, SALTS = make_log(37)


def test_hardcoded_abi_constants_match_keccak() -> None:
    assert keccak(text="rootAt(uint64)")[:4] == ROOT_AT_SELECTOR
    assert keccak(text="Anchored(uint64,bytes32,uint64,bytes32)") == ANCHORED_TOPIC


def test_bundle_and_verifier_import_only_the_core_stdlib_and_httpx() -> None:
    loaded = loaded_after("import backend.receipts.bundle, backend.receipts.verifier")
    ours = {name for name in loaded if name.split(".")[0] == "backend"}
    assert ours <= {"backend", "backend.receipts"} | {
        f"backend.receipts.{m}"
        for m in ("canonical", "commitment", "merkle", "signing", "bundle", "verifier")
    }
    extra = loaded - loaded_after(f"{ALLOWED}, httpx")
    foreign = {n for n in extra if n.split(".")[0] not in sys.stdlib_module_names | {"backend"}}
    assert not foreign, sorted(foreign)


def test_offline_valid_and_every_failure_named() -> None:
    bundle = make_bundle(STORE, RECEIPTS, SALTS, 11, 37)
    report = verify_bundle(bundle, pubkey=KEY, offline=True)
    assert (report.result, report.exit_code, report.failed) == ("valid", 0, [])
    assert verify_bundle(bundle, pubkey=None, offline=True).failed == [
        "issuance_signature",
        "checkpoint_signature",
    ]
    swapped = replace(bundle, receipt=RECEIPTS[12], salt=SALTS[12])
    assert verify_bundle(swapped, pubkey=KEY, offline=True).failed == [
        "commitment",
        "issuance_signature",
        "inclusion",
    ]
    moved = replace(bundle, leaf_index=12)
    assert verify_bundle(moved, pubkey=KEY, offline=True).failed == ["inclusion"]
    resigned = replace(bundle, issuance=Signature(SIGNER.key_id, "00" * 64))
    assert verify_bundle(resigned, pubkey=KEY, offline=True).failed == ["issuance_signature"]


def test_online_with_no_anchor_and_no_rpc_is_not_anchored() -> None:
    report = verify_bundle(make_bundle(STORE, RECEIPTS, SALTS, 0, 37), pubkey=KEY, rpc_urls=[])
    assert (report.result, report.exit_code) == ("not_anchored", 2)


@settings(max_examples=40, deadline=None)
@given(index=st.integers(0, 36), bit=st.integers(0, 255), node=st.integers(0, 5))
def test_any_flipped_bit_in_the_audit_path_is_invalid(index: int, bit: int, node: int) -> None:
    bundle = make_bundle(STORE, RECEIPTS, SALTS, index, 37)
    path = list(bundle.audit_path)
    node %= len(path)
    path[node] = (int.from_bytes(path[node], "big") ^ (1 << bit)).to_bytes(32, "big")
    report = verify_bundle(replace(bundle, audit_path=tuple(path)), pubkey=KEY, offline=True)
    assert report.failed == ["inclusion"]


def test_consistency_edge_cases_offline() -> None:
    def checkpoint(size: int) -> CheckpointFile:
        return CheckpointFile(SIGNER.sign_checkpoint(size, merkle_root(STORE, size), size))

    proof = ConsistencyProof(10, 37, tuple(consistency_proof(STORE, 10, 37)))
    ok = verify_consistency_checkpoints(checkpoint(10), checkpoint(37), proof, KEY, offline=True)
    assert ok.result == "valid"
    same = verify_consistency_checkpoints(checkpoint(9), checkpoint(9), None, KEY, offline=True)
    assert same.result == "valid"
    backwards = verify_consistency_checkpoints(
        checkpoint(37), checkpoint(10), proof, KEY, offline=True
    )
    assert backwards.failed == ["consistency"]
    wrong_sizes = verify_consistency_checkpoints(
        checkpoint(11), checkpoint(37), proof, KEY, offline=True
    )
    assert wrong_sizes.failed == ["consistency"]
    unsigned = verify_consistency_checkpoints(
        checkpoint(10), checkpoint(37), proof, None, offline=True
    )
    assert unsigned.failed == ["old_checkpoint_signature", "new_checkpoint_signature"]
