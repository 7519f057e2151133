"""EvmAdapter on real Anvil: the shared conformance suite, reverts, chain ids, the registry."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine

from chain_adapters.adapters import adapter_class, create_adapter, families, register_adapter
from chain_adapters.base import ContractCall, RawTx
from chain_adapters.compiler import ContractArtifact
from chain_adapters.devnet import Devnet
from chain_adapters.evm import EvmAdapter
from chain_adapters.exceptions import ChainConfigError, ChainError, ChainIdMismatch, ContractRevert
from tests.chain_adapters.conformance import ChainAdapterConformance
from tests.chain_adapters.conftest import FAST_POOL, chain_config


class TestEvmAdapterConformance(ChainAdapterConformance):
    @pytest.fixture
    def adapter(self, adapter_a: EvmAdapter) -> EvmAdapter:
        return adapter_a

    @pytest.fixture
    def probe_contract(self, probe: ContractArtifact) -> tuple[Any, Any]:
        return probe.bytecode, probe.abi

    @pytest.fixture
    def stranger(self, accounts: list[LocalAccount]) -> str:
        return accounts[1].address


@pytest.fixture
def probe_address(adapter_a: EvmAdapter, probe: ContractArtifact, signer: LocalAccount) -> str:
    return adapter_a.deploy(probe.bytecode, abi=probe.abi, args=(signer.address, 1)).address


def test_mined_custom_error_names_chain_tx_and_args(
    adapter_a: EvmAdapter,
    probe: ContractArtifact,
    probe_address: str,
    accounts: list[LocalAccount],
) -> None:
    stranger = adapter_a.with_signer(accounts[1])
    call = ContractCall(probe_address, probe.abi, "guarded", (7,), gas=100_000)  # no estimate
    with pytest.raises(ContractRevert) as caught:
        stranger.send(call)
    error = caught.value
    assert error.error_name == "Unauthorized"
    assert error.error_args == {"caller": accounts[1].address, "code": 7}
    assert error.tx_hash is not None and error.tx_hash.startswith("0x")
    message = str(error)
    assert adapter_a.chain.name in message
    assert error.tx_hash in message
    assert "Unauthorized(caller=" in message and "code=7" in message
    row = adapter_a.store.by_hash(adapter_a.chain_id, error.tx_hash)  # type: ignore[union-attr]
    assert row is not None and row.status == "failed" and "Unauthorized" in (row.error or "")


def test_error_string_and_panic_are_decoded(
    adapter_a: EvmAdapter, probe: ContractArtifact, probe_address: str
) -> None:
    with pytest.raises(ContractRevert) as caught:
        adapter_a.call(ContractCall(probe_address, probe.abi, "failWith", ("no way",)))
    assert (caught.value.error_name, caught.value.error_args) == ("Error", {"message": "no way"})
    with pytest.raises(ContractRevert) as caught:
        adapter_a.call(ContractCall(probe_address, probe.abi, "divide", (1, 0)))
    assert caught.value.error_name == "Panic"
    assert caught.value.error_args["code"] == 0x12


def test_registered_abi_decodes_reverts_of_raw_transactions(
    adapter_a: EvmAdapter,
    probe: ContractArtifact,
    probe_address: str,
    accounts: list[LocalAccount],
) -> None:
    data = bytes.fromhex(
        adapter_a.w3.eth.contract(abi=probe.abi).encode_abi("guarded", args=[3])[2:]
    )
    stranger = adapter_a.with_signer(accounts[1])
    with pytest.raises(ContractRevert) as caught:
        stranger.call(RawTx(to=probe_address, data=data))
    assert caught.value.error_name is None  # the adapter does not know this ABI yet
    adapter_a.register_abi(probe.abi)
    with pytest.raises(ContractRevert) as caught:
        stranger.call(RawTx(to=probe_address, data=data))
    assert caught.value.error_name == "Unauthorized"


def test_chain_id_mismatch_on_connect(devnet_a: Devnet) -> None:
    adapter = EvmAdapter(chain_config(devnet_a, chain_id=999), pool_policy=FAST_POOL)
    with pytest.raises(ChainIdMismatch) as caught:
        adapter.connect()
    assert caught.value.expected == 999 and caught.value.actual == devnet_a.chain_id
    assert devnet_a.rpc_url in str(caught.value)


def test_chain_id_checked_on_every_url(devnet_a: Devnet, devnet_b: Devnet) -> None:
    # second URL belongs to another chain: connect must notice although the first is fine
    config = chain_config(devnet_a, urls=(devnet_a.rpc_url, devnet_b.rpc_url))
    with pytest.raises(ChainIdMismatch) as caught:
        EvmAdapter(config, pool_policy=FAST_POOL).connect()
    assert caught.value.url == devnet_b.rpc_url


def test_chain_id_checked_without_connect(devnet_a: Devnet) -> None:
    adapter = EvmAdapter(chain_config(devnet_a, chain_id=999), pool_policy=FAST_POOL)
    with pytest.raises(ChainIdMismatch):
        adapter.head()


def test_sending_needs_signer_and_engine(devnet_a: Devnet, engine: Engine) -> None:
    with pytest.raises(ChainError, match="database engine"):
        EvmAdapter(chain_config(devnet_a)).transactions  # noqa: B018
    with pytest.raises(ChainError, match="no signer"):
        EvmAdapter(chain_config(devnet_a), engine=engine).send(RawTx(to=None))


def test_finalized_mode_uses_the_node_tag(devnet_a: Devnet) -> None:
    adapter = EvmAdapter(chain_config(devnet_a, finality="finalized"), pool_policy=FAST_POOL)
    assert adapter.finalized_block() == adapter.block("finalized").number
    assert adapter.finalized_block() <= adapter.head()


def test_confirmations_mode(devnet_a: Devnet) -> None:
    adapter = EvmAdapter(chain_config(devnet_a, confirmations=3), pool_policy=FAST_POOL)
    adapter.devnet_request("anvil_mine", ["0x5"])
    head = adapter.head()
    assert adapter.finalized_block() == head - 3
    assert adapter.is_final(head - 3) and not adapter.is_final(head - 2)


def test_devnet_requests_refused_on_real_chains(devnet_a: Devnet) -> None:
    config = chain_config(devnet_a, devnet=False, timelock_delay=48 * 3600)
    with pytest.raises(ChainError, match="devnets only"):
        EvmAdapter(config).devnet_request("anvil_mine")


def test_registry_maps_config_to_evm_adapter(devnet_a: Devnet, engine: Engine) -> None:
    config = chain_config(devnet_a)
    assert "evm" in families()
    assert adapter_class(config) is EvmAdapter
    adapter = create_adapter(config, engine=engine)
    assert isinstance(adapter, EvmAdapter)
    with pytest.raises(ChainConfigError, match="already has an adapter"):
        register_adapter("evm", "somewhere.else:Adapter")
