"""EIP-1271: a contract wallet (MockERC1271Wallet on a session devnet) signs in through the chain
adapter; a wallet that does not accept the signature is refused with 401."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from web3 import Web3

from backend.app import create_app
from chain_adapters.compiler import CompiledProject
from chain_adapters.devnet import Devnet
from chain_adapters.registry import dump_chains

from .conftest import Signer, bearer, new_nonce, siwe_fields


@pytest.fixture
def chain_client(
    make_settings,
    chains: list[Devnet],
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> Iterator[TestClient]:
    chains_file = tmp_path / "chains.toml"
    chains_file.write_text(dump_chains(d.chain_config() for d in chains))
    with TestClient(create_app(make_settings(chains_file=chains_file))) as client:
        yield client


def deploy_wallet(w3: Web3, compiled: CompiledProject, owner: str, deployer: str) -> str:
    artifact = compiled.get("MockERC1271Wallet")
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    tx = factory.constructor(owner).transact({"from": deployer})
    address = w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
    return Web3.to_checksum_address(address)


def wallet_message(client: TestClient, wallet: str, chain_id: int) -> dict[str, object]:
    fields = siwe_fields(new_nonce(client), chainId=chain_id)
    fields["address"] = wallet  # the contract wallet, signed for by its owner's key
    return fields


def test_contract_wallet_signs_in_with_its_owner_signature(
    chain_client: TestClient,
    w3: Web3,
    compiled: CompiledProject,
    accounts: list[LocalAccount],
    sign: Signer,
) -> None:
    owner = accounts[3]
    wallet = deploy_wallet(w3, compiled, owner.address, accounts[0].address)
    chain_id = w3.eth.chain_id
    assert chain_client.get("/v1/auth/nonce").json()["chain_ids"] == [31337, 31338]

    signed = sign([(owner, wallet_message(chain_client, wallet, chain_id))])[0]
    response = chain_client.post("/v1/auth/siwe", json=signed)
    assert response.status_code == 200, response.text
    assert response.json()["signer"] == "eip1271"
    assert response.json()["address"] == wallet
    me = chain_client.get("/v1/auth/me", headers=bearer(response.json()["token"])).json()
    assert me["tenant"] == f"wallet:{wallet.lower()}"


def test_contract_wallet_that_rejects_the_signature_gives_401(
    chain_client: TestClient,
    w3: Web3,
    compiled: CompiledProject,
    accounts: list[LocalAccount],
    sign: Signer,
) -> None:
    wallet = deploy_wallet(w3, compiled, accounts[4].address, accounts[0].address)
    signed = sign([(accounts[3], wallet_message(chain_client, wallet, w3.eth.chain_id))])[0]
    response = chain_client.post("/v1/auth/siwe", json=signed)
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == "siwe_invalid"
    assert body["detail"].startswith("signature: ")
    assert "0xffffffff" in body["detail"]


def test_the_wallet_is_looked_up_on_the_message_chain_only(
    chain_client: TestClient,
    w3: Web3,
    compiled: CompiledProject,
    accounts: list[LocalAccount],
    sign: Signer,
    chains: list[Devnet],
) -> None:
    """Deployed on chain A, claimed on chain B where the address has no code: refused."""
    wallet = deploy_wallet(w3, compiled, accounts[3].address, accounts[0].address)
    other_chain = next(d.chain_id for d in chains if d.chain_id != w3.eth.chain_id)
    signed = sign([(accounts[3], wallet_message(chain_client, wallet, other_chain))])[0]
    response = chain_client.post("/v1/auth/siwe", json=signed)
    assert response.status_code == 401, response.text
    assert "no contract code" in response.json()["detail"]
