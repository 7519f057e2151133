"""The compile pipeline against a real solc driven through py-solc-x."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from web3 import Web3

from chain_adapters import compiler
from chain_adapters.compiler import SOLC_VERSION, compile_project, resolve_solc
from chain_adapters.devnet import Devnet
from chain_adapters.exceptions import CompileError, SolcNotFound

GREETER = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

contract Greeter is Ownable {
    uint256 public counter;

    constructor(address owner_) Ownable(owner_) {}

    function bump() external onlyOwner returns (string memory) {
        counter += 1;
        return Strings.toString(counter);
    }
}
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "Greeter.sol").write_text(GREETER)
    return src


def test_compiles_openzeppelin_import_and_deploys_on_two_chains(
    tree: Path, tmp_path: Path, chains: list[Devnet], accounts
) -> None:
    project = compile_project([tree], cache_dir=tmp_path / "cache")
    greeter = project.get("Greeter")
    assert greeter.deployable
    assert any(a.source.startswith("@openzeppelin/") for a in project.artifacts.values())
    owner = accounts[0]
    chain_ids = set()
    for devnet in chains:
        w3 = Web3(Web3.HTTPProvider(devnet.rpc_url))
        contract = w3.eth.contract(abi=greeter.abi, bytecode=greeter.bytecode)
        tx = contract.constructor(owner.address).transact({"from": owner.address})
        receipt = w3.eth.wait_for_transaction_receipt(tx)
        deployed = w3.eth.contract(address=receipt["contractAddress"], abi=greeter.abi)
        assert deployed.functions.owner().call() == owner.address
        assert w3.eth.get_code(receipt["contractAddress"]).hex() == greeter.deployed_bytecode[2:]
        chain_ids.add(w3.eth.chain_id)
    assert chain_ids == {d.chain_id for d in chains} and len(chain_ids) == 2


def test_second_compile_hits_cache_and_a_change_misses_it(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = compile_project([tree], cache_dir=cache)
    second = compile_project([tree], cache_dir=cache)
    assert not first.cache_hit
    assert second.cache_hit
    assert second.input_hash == first.input_hash
    assert second.get("Greeter") == first.get("Greeter")

    (tree / "Greeter.sol").write_text(GREETER.replace("counter += 1", "counter += 2"))
    third = compile_project([tree], cache_dir=cache)
    assert not third.cache_hit
    assert third.get("Greeter").bytecode != first.get("Greeter").bytecode


def test_torn_cache_file_is_recompiled(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = compile_project([tree], cache_dir=cache)
    (cache / f"{first.input_hash}.json").write_text("{not json")
    again = compile_project([tree], cache_dir=cache)
    assert not again.cache_hit
    assert again.get("Greeter") == first.get("Greeter")


def test_syntax_error_names_file_line_and_message(tmp_path: Path) -> None:
    src = tmp_path / "bad"
    src.mkdir()
    (src / "Broken.sol").write_text(
        "// SPDX-License-Identifier: MIT\npragma solidity 0.8.28;\n\n"
        "contract Broken {\n    function f() external { uint256 x = ; }\n}\n"
    )
    with pytest.raises(CompileError) as caught:
        compile_project([src], cache_dir=tmp_path / "cache")
    err = caught.value
    assert err.file.endswith("Broken.sol")
    assert err.line == 5
    assert "ParserError" in err.compiler_message
    assert "Broken.sol:5: ParserError" in str(err)


def test_missing_import_is_a_compile_error_naming_the_importer(tmp_path: Path) -> None:
    src = tmp_path / "imp"
    src.mkdir()
    (src / "A.sol").write_text(
        "// SPDX-License-Identifier: MIT\npragma solidity 0.8.28;\n"
        'import "./Nope.sol";\ncontract A {}\n'
    )
    with pytest.raises(CompileError) as caught:
        compile_project([src], cache_dir=tmp_path / "cache")
    assert caught.value.file.endswith("A.sol")
    assert caught.value.line == 3
    assert "Nope.sol" in str(caught.value)


def test_project_contracts_compile(compiled) -> None:
    """Every contract under contracts/ and hardhat_fixtures/ compiles with the pinned settings."""
    ours = compiled.ours()
    assert ours, "no contracts found under contracts/ or hardhat_fixtures/"
    for artifact in ours:
        assert artifact.abi is not None
        assert artifact.source.startswith(("contracts/", "hardhat_fixtures/"))


def _fake_solc(path: Path, version: str) -> Path:
    path.write_text(f"#!/bin/sh\necho 'solc, fake'\necho 'Version: {version}+commit.deadbeef'\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_resolution_prefers_solc_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    resolve_solc.cache_clear()
    monkeypatch.setenv("SOLC_BINARY", str(compiler.SOLCJS_WRAPPER))
    try:
        found = resolve_solc()
        assert found.how == "SOLC_BINARY"
        assert found.path == str(compiler.SOLCJS_WRAPPER)
    finally:
        resolve_solc.cache_clear()


def test_solc_binary_of_wrong_version_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolve_solc.cache_clear()
    monkeypatch.setenv("SOLC_BINARY", str(_fake_solc(tmp_path / "solc", "0.8.1")))
    try:
        with pytest.raises(SolcNotFound, match=f"0.8.1.*pins {SOLC_VERSION}"):
            resolve_solc()
    finally:
        resolve_solc.cache_clear()


def test_falls_back_to_solcjs_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    resolve_solc.cache_clear()
    monkeypatch.delenv("SOLC_BINARY", raising=False)
    monkeypatch.setenv("CREDAGG_SOLC_NO_DOWNLOAD", "1")
    monkeypatch.setattr(compiler.solcx, "get_installed_solc_versions", lambda: [])
    try:
        assert resolve_solc().how == "solc-js wrapper"
    finally:
        resolve_solc.cache_clear()


def test_wrapper_speaks_standard_json_only(tmp_path: Path) -> None:
    """The solc-js wrapper prints nothing but the output JSON (what py-solc-x parses)."""
    import json
    import subprocess

    out = subprocess.run(
        [str(compiler.SOLCJS_WRAPPER), "--standard-json"],
        input=json.dumps(
            {"language": "Solidity", "sources": {"a.sol": {"content": "contract A {}"}}}
        ),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
    ).stdout
    assert json.loads(out)["sources"]["a.sol"]["id"] == 0
