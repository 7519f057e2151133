"""`credagg verify` / `credagg consistency` end to end on both devnets, with the real contract.

A log of 50 receipts is checkpointed at 20 and 50, both anchored by `market.operator` on both
chains, and 70 blocks mined so Anvil's `finalized` tag (head - 64) covers the anchors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner
from web3 import Web3

from backend.receipts.bundle import (
    Anchor,
    CheckpointFile,
    ConsistencyProof,
    ProofBundle,
    dump_bundle,
    dump_checkpoint_file,
    dump_consistency_proof,
)
from backend.receipts.merkle import MemoryNodeStore, consistency_proof, merkle_root
from backend.receipts.signing import ReceiptSigner, SignedCheckpoint
from backend.receipts.verify_cli import register
from tests.receipts.test_bundle import SIGNER, make_bundle, make_log

DOWN_RPC = "http://127.0.0.1:9"  # the discard port: nothing listens there

app = typer.Typer()
register(app)
runner = CliRunner()


@dataclass
class AnchoredLog:
    store: MemoryNodeStore
    receipts: list[dict[str, object]]
    salts: list[bytes]
    anchors: dict[int, tuple[Anchor, ...]]  # tree size -> one anchor per chain
    rpc_urls: list[str]
    contract: str

    def bundle(self, index: int, size: int = 50) -> ProofBundle:
        return make_bundle(
            self.store, self.receipts, self.salts, index, size, self.anchors.get(size, ())
        )

    def checkpoint(self, size: int) -> SignedCheckpoint:
        return SIGNER.sign_checkpoint(size, merkle_root(self.store, size), 1_700_000_000 + size)


def anchor_on(w3: Web3, contract, operator: str, size: int, root: bytes) -> Anchor:  # type: ignore[no-untyped-def]
    tx_hash = contract.functions.anchor(size, root).transact({"from": operator})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt["status"] == 1
    return Anchor(
        w3.eth.chain_id,
        contract.address.lower(),
        bytes(tx_hash),
        receipt["blockNumber"],
        bytes(receipt["blockHash"]),
    )


def finalize(w3: Web3) -> None:
    w3.provider.make_request("anvil_mine", [hex(70)])  # type: ignore[arg-type]


def anchor_contract(w3: Web3, market, compiled):  # type: ignore[no-untyped-def]
    address = market.address(w3.eth.chain_id, "ReceiptAnchor")
    return w3.eth.contract(address=address, abi=compiled.get("ReceiptAnchor").abi)


def anchored_log(market, chains, compiled, sizes: tuple[int, ...] = (20, 50)) -> AnchoredLog:  # type: ignore[no-untyped-def]
    store, receipts, salts = make_log(60)
    anchors: dict[int, list[Anchor]] = {size: [] for size in sizes}
    contract_address = ""
    for devnet in chains:
        w3 = Web3(Web3.HTTPProvider(devnet.rpc_url))
        contract = anchor_contract(w3, market, compiled)
        contract_address = contract.address.lower()
        for size in sizes:
            root = merkle_root(store, size)
            anchors[size].append(anchor_on(w3, contract, market.operator.address, size, root))
        finalize(w3)
    return AnchoredLog(
        store,
        receipts,
        salts,
        {size: tuple(found) for size, found in anchors.items()},
        [devnet.rpc_url for devnet in chains],
        contract_address,
    )


@pytest.fixture
def log(load_fixture, chains, compiled) -> AnchoredLog:  # type: ignore[no-untyped-def]
    return anchored_log(load_fixture("two_chain_market"), chains, compiled)


def run(*args: str | Path) -> tuple[int, dict[str, object]]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, json.loads(result.stdout)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def rpc_args(urls: list[str]) -> list[str]:
    return [arg for url in urls for arg in ("--rpc", url)]


PUBKEY = SIGNER.public_key_bytes.hex()


def test_valid_bundles_verify_against_both_chains(log: AnchoredLog, tmp_path: Path) -> None:
    for index in (0, 19, 31, 49):
        path = write(tmp_path, f"b{index}.json", dump_bundle(log.bundle(index)))
        code, report = run("verify", path, *rpc_args(log.rpc_urls), "--pubkey", PUBKEY)
        assert (code, report["result"]) == (0, "valid"), report
        passed = {c["name"] for c in report["checks"] if c["ok"]}  # type: ignore[attr-defined]
        assert {"commitment", "issuance_signature", "checkpoint_signature", "inclusion"} <= passed
        assert {"anchor:31337", "anchor:31338"} <= passed


def tamper(document: dict, path: tuple, flip: int = 0) -> dict:  # type: ignore[type-arg]
    """Change one hex digit (or one character) of the value at `path`."""
    document = json.loads(json.dumps(document))
    target = document
    for key in path[:-1]:
        target = target[key]
    value = target[path[-1]]
    if isinstance(value, int):
        target[path[-1]] = value + 1
    else:
        position = len(value) - 1 - flip
        swapped = "1" if value[position] != "1" else "2"
        target[path[-1]] = value[:position] + swapped + value[position + 1 :]
    return document


@pytest.mark.parametrize(
    ("path", "failed"),
    [
        (("receipt", "amount"), {"commitment", "issuance_signature", "inclusion"}),
        (("salt",), {"commitment", "issuance_signature", "inclusion"}),
        (("audit_path", 2), {"inclusion"}),
        (("checkpoint", "root"), {"checkpoint_signature", "inclusion", "anchor:31337"}),
        (("tree_size",), {"inclusion"}),
        (("anchors", 0, "tx_hash"), {"anchor:31337"}),
        (("anchors", 1, "block_hash"), {"anchor:31338"}),
        (("anchors", 0, "contract"), {"anchor:31337"}),
        (("anchors", 1, "block_number"), {"anchor:31338"}),
    ],
)
def test_one_changed_byte_is_invalid_and_names_the_check(
    log: AnchoredLog,
    tmp_path: Path,
    path: tuple,
    failed: set[str],  # type: ignore[type-arg]
) -> None:
    document = json.loads(dump_bundle(log.bundle(33)))
    bundle = write(tmp_path, "b.json", json.dumps(tamper(document, path)))
    code, report = run("verify", bundle, *rpc_args(log.rpc_urls), "--pubkey", PUBKEY)
    assert code == 1 and report["result"] == "invalid", report
    assert failed <= set(report["failed"]), report["failed"]  # type: ignore[arg-type]


def test_not_yet_anchored_or_not_yet_final_is_exit_2(
    load_fixture,
    chains,
    compiled,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    market = load_fixture("two_chain_market")
    log = anchored_log(market, chains, compiled, sizes=(50,))
    unanchored = write(tmp_path, "u.json", dump_bundle(log.bundle(55, size=60)))
    code, report = run("verify", unanchored, *rpc_args(log.rpc_urls), "--pubkey", PUBKEY)
    assert (code, report["result"]) == (2, "not_anchored"), report
    # Anchored at 60 on chain A, but not yet final: still 2, and the detail says why.
    w3 = Web3(Web3.HTTPProvider(chains[0].rpc_url))
    contract = anchor_contract(w3, market, compiled)
    anchor = anchor_on(w3, contract, market.operator.address, 60, merkle_root(log.store, 60))
    pending = replace(log.bundle(55, size=60), anchors=(anchor,))
    path = write(tmp_path, "p.json", dump_bundle(pending))
    code, report = run("verify", path, *rpc_args(log.rpc_urls), "--pubkey", PUBKEY)
    assert code == 2, report
    assert "not yet final" in json.dumps(report["checks"])
    finalize(w3)
    assert run("verify", path, *rpc_args(log.rpc_urls), "--pubkey", PUBKEY)[0] == 0


def test_a_chain_answering_another_root_fails_even_if_one_matches(
    load_fixture,
    chains,
    compiled,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    market = load_fixture("two_chain_market")
    store, receipts, salts = make_log(50)
    root = merkle_root(store, 50)
    anchors = []
    for devnet, anchored_root in zip(chains, (root, b"\x99" * 32), strict=True):
        w3 = Web3(Web3.HTTPProvider(devnet.rpc_url))
        contract = anchor_contract(w3, market, compiled)
        anchors.append(anchor_on(w3, contract, market.operator.address, 50, anchored_root))
        finalize(w3)
    bundle = write(
        tmp_path, "b.json", dump_bundle(make_bundle(store, receipts, salts, 3, 50, tuple(anchors)))
    )
    code, report = run("verify", bundle, *rpc_args([d.rpc_url for d in chains]), "--pubkey", PUBKEY)
    assert code == 1 and report["failed"] == ["anchor:31338"], report
    assert "different root" in json.dumps(report["checks"])


def test_pinned_key_offline_and_a_down_endpoint(log: AnchoredLog, tmp_path: Path) -> None:
    bundle = write(tmp_path, "b.json", dump_bundle(log.bundle(7)))
    rpc = rpc_args(log.rpc_urls)
    other = ReceiptSigner(b"\x07" * 32).public_key_bytes.hex()
    code, report = run("verify", bundle, *rpc, "--pubkey", other)
    assert code == 1 and {"issuance_signature", "checkpoint_signature"} <= set(report["failed"])  # type: ignore[arg-type]
    code, report = run("verify", bundle, *rpc)  # no pinned key: fail closed
    assert code == 1 and "no pinned public key" in json.dumps(report["checks"])
    key_file = write(tmp_path, "key.hex", "0x" + PUBKEY + "\n")
    code, report = run("verify", bundle, "--offline", "--pubkey", key_file)
    assert (code, report["result"]) == (0, "valid") and "offline" in report["notes"][0]  # type: ignore[index]
    # One chain down, the other's final anchor matches: still valid, and the outage is reported.
    code, report = run(
        "verify", bundle, "--rpc", DOWN_RPC, "--rpc", log.rpc_urls[1], "--pubkey", PUBKEY
    )
    assert (code, report["result"]) == (0, "valid"), report
    statuses = {c["name"]: c["status"] for c in report["checks"]}  # type: ignore[attr-defined]
    assert statuses[f"rpc:{DOWN_RPC}"] == "skipped"
    assert statuses["anchor:31337"] == "skipped" and statuses["anchor:31338"] == "pass"
    # Nothing reachable: anchoring cannot be confirmed, which is "come back later", not valid.
    assert run("verify", bundle, "--rpc", DOWN_RPC, "--pubkey", PUBKEY)[0] == 2
    code, report = run("verify", write(tmp_path, "bad.json", "{"), "--pubkey", PUBKEY)
    assert code == 1 and report["failed"] == ["bundle"]
    assert run("verify", bundle, "--pubkey", "0x1234", "--offline")[0] == 1


def test_consistency_between_anchored_checkpoints(log: AnchoredLog, tmp_path: Path) -> None:
    old = CheckpointFile(log.checkpoint(20), log.anchors[20])
    proof = ConsistencyProof(20, 50, tuple(consistency_proof(log.store, 20, 50)))
    new = CheckpointFile(log.checkpoint(50), log.anchors[50], proof)
    old_path = write(tmp_path, "old.json", dump_checkpoint_file(old))
    new_path = write(tmp_path, "new.json", dump_checkpoint_file(new))
    rpc = rpc_args(log.rpc_urls)
    code, report = run("consistency", old_path, new_path, *rpc, "--pubkey", PUBKEY)
    assert (code, report["result"]) == (0, "valid"), report
    # The proof may come separately, and a bundle can stand in for the new checkpoint.
    bare = write(tmp_path, "bare.json", dump_checkpoint_file(replace(new, consistency=None)))
    proof_path = write(tmp_path, "proof.json", dump_consistency_proof(proof))
    assert (
        run("consistency", old_path, bare, *rpc, "--pubkey", PUBKEY, "--proof", proof_path)[0] == 0
    )
    assert run("consistency", old_path, bare, *rpc, "--pubkey", PUBKEY)[0] == 1
    # A forked log (leaf 5 differs) signed at 50 cannot be proved consistent with the old 20.
    forked_store, _, _ = make_log(50, fork_at=5)
    forked = SIGNER.sign_checkpoint(50, merkle_root(forked_store, 50), 1_800_000_000)
    forked_proof = ConsistencyProof(20, 50, tuple(consistency_proof(forked_store, 20, 50)))
    forked_path = write(
        tmp_path, "fork.json", dump_checkpoint_file(CheckpointFile(forked, (), forked_proof))
    )
    code, report = run("consistency", old_path, forked_path, "--offline", "--pubkey", PUBKEY)
    assert code == 1 and report["failed"] == ["consistency"], report


def test_late_inclusion_is_reported_as_a_warning_with_exit_0(
    log: AnchoredLog, tmp_path: Path
) -> None:
    """The anchors are mined now; a receipt promised for 2023 was included late, one promised
    for 2100 was not. Neither is invalid: the warning is evidence, not a verdict."""
    promises = [
        (datetime(2023, 11, 14, 22, 20, tzinfo=UTC), True),
        (datetime(2100, 1, 1, tzinfo=UTC), False),
    ]
    for include_by, late in promises:
        bundle = make_bundle(
            log.store, log.receipts, log.salts, 9, 50, log.anchors[50], include_by=include_by
        )
        path = write(tmp_path, f"late-{late}.json", dump_bundle(bundle))
        code, report = run("verify", path, "--pubkey", PUBKEY, *rpc_args(log.rpc_urls))
        assert (code, report["result"], report["included_late"]) == (0, "valid", late)
        warnings = report["warnings"]
        assert isinstance(warnings, list)
        assert bool(warnings) is late
        assert all("anchor" in warning["detail"] for warning in warnings)
