"""End to end on two devnets: 1,000 receipts issued, anchored on both chains, every bundle
downloaded through the API by an auditor and checked by `credagg verify` (exit 0); one byte
changed in the receipt, salt, audit path or anchor -> exit 1; a receipt newer than the last
anchor -> exit 2.

`credagg verify` runs as a real subprocess: once over all 1,000 files (an auditor checking a
whole download; each distinct chain read is made once), and once per tampered file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine
from typer.testing import CliRunner
from web3 import Web3

from backend.app import create_app
from backend.cli import app as cli_app
from backend.config import Settings
from backend.db import SessionFactory
from backend.receipts.anchoring import anchor_once, refresh
from backend.receipts.service import IssuedReceipt, issue_receipts
from backend.receipts.signing import ReceiptSigner
from chain_adapters.compiler import CompiledProject
from chain_adapters.devnet import Devnet
from chain_adapters.evm.adapter import EvmAdapter
from chain_adapters.evm.store import chain_metadata
from hardhat_fixtures.scenarios import Market
from tests.auth.conftest import bearer, create_key
from tests.backend.conftest import ROOT
from tests.receipts.conftest import create_draft

RECEIPTS = 1000


@pytest.fixture
def market(load_fixture: Callable[[str], Any]) -> Market:
    loaded: Market = load_fixture("two_chain_market")
    return loaded


@pytest.fixture
def nonce_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'nonces.db'}")
    chain_metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def tenants(n: int) -> str:
    if n % 3 == 0:
        return f"provider:{n % 7 + 1}"
    return f"wallet:0x{n % 11:040x}"


def run_verify(path: Path, pubkey: str, rpcs: list[str]) -> tuple[int, dict[str, Any]]:
    args = ["verify", str(path), "--pubkey", pubkey]
    for url in rpcs:
        args += ["--rpc", url]
    result = CliRunner().invoke(cli_app, args)
    return result.exit_code, json.loads(result.stdout)


def run_verify_process(
    paths: Path | list[Path], pubkey: str, rpcs: list[str]
) -> tuple[int, dict[str, Any]]:
    files = [str(p) for p in (paths if isinstance(paths, list) else [paths])]
    args = [sys.executable, "-m", "backend.cli", "verify", *files, "--pubkey", pubkey]
    for url in rpcs:
        args += ["--rpc", url]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    return done.returncode, json.loads(done.stdout)


def flip_hex_digit(value: str) -> str:
    """The same hex string with its last digit changed (one byte differs)."""
    last = value[-1]
    return value[:-1] + ("0" if last != "0" else "1")


def test_a_thousand_receipts_anchored_on_two_chains_verify_and_tampering_is_caught(
    receipts_settings: Settings,
    session_factory: SessionFactory,
    signer: ReceiptSigner,
    chains: list[Devnet],
    market: Market,
    compiled: CompiledProject,
    nonce_engine: Engine,
    tmp_path: Path,
) -> None:
    issued: list[IssuedReceipt] = []
    with session_factory() as session:
        for start in range(0, RECEIPTS, 100):
            drafts = [
                create_draft(tenant=tenants(n), subject=f"loan:{n}")
                for n in range(start, start + 100)
            ]
            issued += issue_receipts(session, drafts, signer=signer)
            session.commit()

    targets = {
        d.chain_id: (
            EvmAdapter(d.chain_config(), engine=nonce_engine, signer=market.operator),
            market.address(d.chain_id, "ReceiptAnchor"),
        )
        for d in chains
    }
    abi = compiled.get("ReceiptAnchor").abi
    with session_factory() as session:
        records = anchor_once(session, signer=signer, adapters=targets, abi=abi)
        session.commit()
    assert sorted((r.chain_id, r.tree_size) for r in records) == sorted(
        (d.chain_id, RECEIPTS) for d in chains
    )
    for devnet in chains:  # Anvil's `finalized` is head - 64
        Web3(Web3.HTTPProvider(devnet.rpc_url)).provider.make_request(
            "anvil_mine",
            [hex(70)],  # type: ignore[arg-type]
        )
    with session_factory() as session:
        assert {row.status for row in refresh(session, targets)} == {"final"}
        late = issue_receipts(session, [create_draft(subject="late")], signer=signer)[0]
        session.commit()

    settings = receipts_settings.model_copy(update={"data_dir": tmp_path / "data"})
    auditor = bearer(create_key(settings).token)
    pubkey = signer.public_key_bytes.hex()
    rpcs = [d.rpc_url for d in chains]
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    with TestClient(create_app(settings)) as api:
        for receipt in issued:
            response = api.get(f"/v1/receipts/{receipt.id}/proof", headers=auditor)
            assert response.status_code == 200, response.text
            (bundles / f"{receipt.leaf_index}.json").write_text(response.text, encoding="utf-8")
        late_bundle = api.get(f"/v1/receipts/{late.id}/proof", headers=auditor).text

    paths = [bundles / f"{receipt.leaf_index}.json" for receipt in issued]
    code, report = run_verify_process(paths, pubkey, rpcs)
    assert [b["exit_code"] for b in report["bundles"]] == [0] * RECEIPTS, report
    assert code == 0
    assert [b["file"] for b in report["bundles"]] == [str(p) for p in paths]
    single_code, single = run_verify(paths[0], pubkey, rpcs)  # the one-bundle form
    assert (single_code, single["result"], single["leaf_index"]) == (0, "valid", 0)

    sample = json.loads((bundles / "417.json").read_text())
    assert sample["tree_size"] == RECEIPTS
    assert sorted(a["chain_id"] for a in sample["anchors"]) == sorted(d.chain_id for d in chains)

    def tampered(name: str, change: Callable[[dict[str, Any]], None]) -> Path:
        document = json.loads(json.dumps(sample))
        change(document)
        path = tmp_path / f"tampered-{name}.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        return path

    cases = {
        "receipt": lambda d: d["receipt"].update(subject=d["receipt"]["subject"] + "x"),
        "salt": lambda d: d.update(salt=flip_hex_digit(d["salt"])),
        "path": lambda d: d["audit_path"].__setitem__(0, flip_hex_digit(d["audit_path"][0])),
        "anchor": lambda d: d["anchors"][0].update(
            tx_hash=flip_hex_digit(d["anchors"][0]["tx_hash"])
        ),
    }
    for name, change in cases.items():
        code, report = run_verify_process(tampered(name, change), pubkey, rpcs)
        assert code == 1, (name, report)
        assert report["failed"], (name, report)

    late_path = tmp_path / "late.json"
    late_path.write_text(late_bundle, encoding="utf-8")
    code, report = run_verify_process(late_path, pubkey, rpcs)
    assert code == 2, report
