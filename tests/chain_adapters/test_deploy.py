"""Deterministic CREATE2 deployment on two real devnets, the missing-proxy path, the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from chain_adapters.base import ContractCall
from chain_adapters.compiler import ContractArtifact
from chain_adapters.deploy import (
    CREATE2_PROXY,
    CREATE2_PROXY_DEPLOYER,
    CREATE2_PROXY_RUNTIME,
    PlanStep,
    Ref,
    create2_address,
    deploy_contract,
    deploy_plan,
    ensure_create2_proxy,
    load_manifest,
    predict_address,
)
from chain_adapters.evm import EvmAdapter
from chain_adapters.exceptions import DeploymentError


def chain_state(adapter: EvmAdapter, signer: LocalAccount) -> tuple[int, int]:
    return adapter.head(), adapter.transaction_count(signer.address)


def test_create2_address_matches_eip1014_examples() -> None:
    zero = "0x" + "00" * 20
    assert create2_address(zero, b"\0" * 32, keccak(b"\0")) == (
        "0x4D1A2e2bB4F88F0250f26Ffff098B0b30B26BF38"
    )
    assert (
        create2_address("0xdeadbeef00000000000000000000000000000000", b"\0" * 32, keccak(b"\0"))
        == "0xB928f69Bb1D91Cd65274e3c79d8986362984fDA3"
    )


def test_same_address_on_two_chains_and_manifest(
    adapter_a: EvmAdapter,
    adapter_b: EvmAdapter,
    probe: ContractArtifact,
    signer: LocalAccount,
    tmp_path: Path,
) -> None:
    assert adapter_a.chain_id != adapter_b.chain_id
    args = (signer.address, 42)
    on_a = deploy_contract(adapter_a, probe, args, manifest_dir=tmp_path)
    on_b = deploy_contract(adapter_b, probe, args, manifest_dir=tmp_path)

    assert on_a.address == on_b.address == predict_address(adapter_a, probe, args)
    assert on_a.created and on_b.created
    assert on_a.runtime_code_hash == on_b.runtime_code_hash
    for adapter, deployed in ((adapter_a, on_a), (adapter_b, on_b)):
        code = adapter.get_code(deployed.address)
        assert "0x" + keccak(code).hex() == deployed.runtime_code_hash
        # immutables hold constructor values, including one derived from address(this)
        assert adapter.call(ContractCall(deployed.address, probe.abi, "self")) == deployed.address
        assert adapter.call(ContractCall(deployed.address, probe.abi, "admin")) == signer.address

    manifest = json.loads((tmp_path / "deployments" / "devnet-a.json").read_text())
    assert manifest["chain_id"] == adapter_a.chain_id
    entry = manifest["contracts"]["Probe"]
    assert entry == {
        "contract": "Probe",
        "address": on_a.address,
        "salt": on_a.salt,
        "init_code_hash": on_a.init_code_hash,
        "runtime_code_hash": on_a.runtime_code_hash,
        "tx_hash": on_a.tx_hash,
        "block_number": on_a.block_number,
    }
    assert load_manifest(tmp_path, "devnet-b")["chain_id"] == adapter_b.chain_id


def test_second_deploy_sends_nothing(
    adapter_a: EvmAdapter, probe: ContractArtifact, signer: LocalAccount, tmp_path: Path
) -> None:
    first = deploy_contract(adapter_a, probe, (signer.address, 1), manifest_dir=tmp_path)
    before = chain_state(adapter_a, signer)
    again = deploy_contract(adapter_a, probe, (signer.address, 1), manifest_dir=tmp_path)
    assert chain_state(adapter_a, signer) == before  # no block, no nonce used
    assert not again.created
    assert again.address == first.address
    assert (again.tx_hash, again.block_number) == (first.tx_hash, first.block_number)
    assert load_manifest(tmp_path, "devnet-a")["contracts"]["Probe"]["tx_hash"] == first.tx_hash


def test_other_constructor_args_or_label_give_other_addresses(
    adapter_a: EvmAdapter, probe: ContractArtifact, signer: LocalAccount
) -> None:
    base = predict_address(adapter_a, probe, (signer.address, 1))
    assert predict_address(adapter_a, probe, (signer.address, 2)) != base
    assert predict_address(adapter_a, probe, (signer.address, 1), "Probe-2") != base
    assert predict_address(adapter_a, probe, (signer.address, 1), project_salt="other") != base


def test_plan_resolves_references(
    adapter_a: EvmAdapter,
    probe_artifacts: dict[str, ContractArtifact],
    signer: LocalAccount,
    tmp_path: Path,
) -> None:
    plan = [
        PlanStep("Probe", probe_artifacts["Probe"], (signer.address, 5)),
        PlanStep("ProbeUser", probe_artifacts["ProbeUser"], (Ref("Probe"), signer.address)),
    ]
    deployed = deploy_plan(adapter_a, plan, manifest_dir=tmp_path)
    user = deployed["ProbeUser"]
    linked = adapter_a.call(ContractCall(user.address, probe_artifacts["ProbeUser"].abi, "probe"))
    assert linked == deployed["Probe"].address
    assert set(load_manifest(tmp_path, "devnet-a")["contracts"]) == {"Probe", "ProbeUser"}

    before = chain_state(adapter_a, signer)
    again = deploy_plan(adapter_a, plan, manifest_dir=tmp_path)
    assert chain_state(adapter_a, signer) == before
    assert {k: v.address for k, v in again.items()} == {k: v.address for k, v in deployed.items()}

    with pytest.raises(DeploymentError, match="not an earlier plan step"):
        deploy_plan(
            adapter_a, [PlanStep("X", probe_artifacts["ProbeUser"], (Ref("Y"), signer.address))]
        )


def test_missing_proxy_is_deployed_from_its_presigned_transaction(
    adapter_a: EvmAdapter, probe: ContractArtifact, signer: LocalAccount
) -> None:
    adapter_a.devnet_request("anvil_setCode", [CREATE2_PROXY, "0x"])
    assert adapter_a.get_code(CREATE2_PROXY) == b""
    assert adapter_a.transaction_count(CREATE2_PROXY_DEPLOYER) == 0

    assert ensure_create2_proxy(adapter_a) is True
    assert adapter_a.get_code(CREATE2_PROXY) == CREATE2_PROXY_RUNTIME
    assert adapter_a.transaction_count(CREATE2_PROXY_DEPLOYER) == 1
    assert ensure_create2_proxy(adapter_a) is False  # idempotent

    deployed = deploy_contract(adapter_a, probe, (signer.address, 9))
    assert deployed.address == predict_address(adapter_a, probe, (signer.address, 9))


def test_constructor_revert_is_reported_before_sending(
    adapter_a: EvmAdapter, probe_artifacts: dict[str, ContractArtifact], signer: LocalAccount
) -> None:
    before = chain_state(adapter_a, signer)
    with pytest.raises(DeploymentError, match="constructor reverts"):
        deploy_contract(adapter_a, probe_artifacts["Reverting"], (0,))
    assert chain_state(adapter_a, signer) == before


def test_foreign_code_at_the_address_is_refused(
    adapter_a: EvmAdapter, probe: ContractArtifact, signer: LocalAccount
) -> None:
    address = predict_address(adapter_a, probe, (signer.address, 3))
    adapter_a.devnet_request("anvil_setCode", [address, "0x6001600055"])
    with pytest.raises(DeploymentError, match="differs from the code its init code produces"):
        deploy_contract(adapter_a, probe, (signer.address, 3))


def test_manifest_of_another_chain_is_refused(
    adapter_a: EvmAdapter, probe: ContractArtifact, signer: LocalAccount, tmp_path: Path
) -> None:
    path = tmp_path / "deployments" / "devnet-a.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"chain_id": 1, "contracts": {}}))
    before = chain_state(adapter_a, signer)
    with pytest.raises(DeploymentError, match="chain id 1"):
        deploy_contract(adapter_a, probe, (signer.address, 4), manifest_dir=tmp_path)
    assert chain_state(adapter_a, signer) == before  # refused before sending anything
