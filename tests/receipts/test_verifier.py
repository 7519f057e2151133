"""The verifier's offline logic and its isolation; chain reads are covered in test_verify_cli."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.receipts.bundle import CheckpointFile, ConsistencyProof
from backend.receipts.commitment import commitment
from backend.receipts.merkle import consistency_proof, merkle_root
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
    resigned = replace(bundle, issuance=replace(bundle.issuance, signature_hex="00" * 64))
    assert verify_bundle(resigned, pubkey=KEY, offline=True).failed == ["issuance_signature"]
    later = replace(bundle.issuance, include_by=bundle.issuance.include_by + timedelta(seconds=1))
    moved_promise = replace(bundle, issuance=later)
    assert verify_bundle(moved_promise, pubkey=KEY, offline=True).failed == ["issuance_signature"]


def test_a_signature_for_another_issue_time_than_the_receipts_fails() -> None:
    """The issuer signed a time that is not the receipt's: the promise is about another moment."""
    bundle = make_bundle(STORE, RECEIPTS, SALTS, 3, 37)
    other = bundle.issuance.issued_at - timedelta(hours=1)
    resigned = SIGNER.sign_commitment(
        commitment(bundle.receipt, bundle.salt), issued_at=other, include_by=other
    )
    report = verify_bundle(replace(bundle, issuance=resigned), pubkey=KEY, offline=True)
    assert report.failed == ["issuance_signature"]
    assert "issued_at" in report.checks[1].detail


def test_late_inclusion_is_a_warning_not_a_failure() -> None:
    timely = verify_bundle(make_bundle(STORE, RECEIPTS, SALTS, 5, 37), pubkey=KEY, offline=True)
    assert timely.to_json()["included_late"] is False and timely.warnings == []
    # The checkpoint is signed at 1_700_000_000 (22:13:20Z): promise 22:13:19 and it is late.
    late_by = make_bundle(
        STORE, RECEIPTS, SALTS, 5, 37, include_by=datetime(2023, 11, 14, 22, 13, 19, tzinfo=UTC)
    )
    late = verify_bundle(late_by, pubkey=KEY, offline=True)
    assert (late.result, late.exit_code, late.failed) == ("valid", 0, [])
    document = late.to_json()
    assert document["included_late"] is True
    assert [w["code"] for w in late.warnings] == ["included_late"]
    assert "after the promised include_by 2023-11-14T22:13:19.000000Z" in late.warnings[0]["detail"]
    on_the_second = make_bundle(
        STORE, RECEIPTS, SALTS, 5, 37, include_by=datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    )
    assert verify_bundle(on_the_second, pubkey=KEY, offline=True).warnings == []


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
