"""Conformance tests every ChainAdapter must pass (web3.py's module_testing pattern).

A family's test module subclasses `ChainAdapterConformance` and provides three fixtures:

- `adapter`: a connected adapter with a funded signer and a fresh transaction store;
- `probe_contract`: (bytecode, abi) of the family's probe contract, which has the interface of
  tests/chain_adapters/contracts/Probe.sol (constructor(admin, seed); store(v) emitting
  Stored(by, v); value(); seed(); guarded(code) reverting Unauthorized(caller, code) unless the
  caller is admin);
- `stranger`: an address that is not the adapter's signer.

The class name does not start with "Test", so pytest collects it only through subclasses.
"""

from __future__ import annotations

from typing import Any

import pytest

from chain_adapters.base import Block, ChainAdapter, ContractCall, Deployment, RawTx
from chain_adapters.exceptions import ContractRevert


class ChainAdapterConformance:
    # -- helpers (not tests) ------------------------------------------------------------------

    def _deploy(
        self, adapter: ChainAdapter, probe_contract: tuple[Any, Any], admin: str
    ) -> Deployment:
        bytecode, abi = probe_contract
        return adapter.deploy(bytecode, abi=abi, args=(admin, 7), label="conformance:probe")

    # -- connection and blocks -----------------------------------------------------------------

    def test_connect_checks_the_chain(self, adapter: ChainAdapter) -> None:
        adapter.connect()  # idempotent
        assert adapter.chain_id == adapter.chain.chain_id

    def test_head_and_block_agree(self, adapter: ChainAdapter) -> None:
        head = adapter.head()
        block = adapter.block(head)
        assert isinstance(block, Block)
        assert block.number == head
        assert block.hash.startswith("0x") and len(block.hash) == 66
        assert adapter.block("latest").number >= head
        if head > 0:
            assert adapter.block(head - 1).hash == block.parent_hash

    def test_finality_is_consistent(self, adapter: ChainAdapter) -> None:
        head = adapter.head()
        finalized = adapter.finalized_block()
        assert 0 <= finalized <= head
        assert adapter.is_final(0)
        assert adapter.is_final(finalized)
        assert not adapter.is_final(head + 1)

    # -- writes --------------------------------------------------------------------------------

    def test_send_value_transfer(self, adapter: ChainAdapter, stranger: str) -> None:
        before = adapter.get_balance(stranger)
        receipt = adapter.send(RawTx(to=stranger, value=12345), label="conformance:transfer")
        assert receipt.status
        assert receipt.chain_id == adapter.chain_id
        assert adapter.is_final(receipt.block_number)
        assert adapter.get_balance(stranger) == before + 12345
        assert adapter.block(receipt.block_number).hash == receipt.block_hash

    def test_deploy_then_call(
        self, adapter: ChainAdapter, probe_contract: tuple[Any, Any], stranger: str
    ) -> None:
        deployment = self._deploy(adapter, probe_contract, stranger)
        assert adapter.get_code(deployment.address)
        assert deployment.receipt.contract_address == deployment.address
        _, abi = probe_contract
        assert adapter.call(ContractCall(deployment.address, abi, "seed")) == 7
        assert adapter.call(ContractCall(deployment.address, abi, "admin")) == stranger

    def test_send_contract_call_and_find_its_log(
        self, adapter: ChainAdapter, probe_contract: tuple[Any, Any], stranger: str
    ) -> None:
        _, abi = probe_contract
        deployment = self._deploy(adapter, probe_contract, stranger)
        receipt = adapter.send(ContractCall(deployment.address, abi, "store", (99,)))
        assert adapter.call(ContractCall(deployment.address, abi, "value")) == 99
        logs = adapter.get_logs(
            from_block=receipt.block_number,
            to_block=receipt.block_number,
            address=deployment.address,
        )
        assert len(logs) == 1
        assert logs[0].transaction_hash == receipt.transaction_hash
        assert logs[0].block_hash == receipt.block_hash
        assert receipt.logs == tuple(logs)

    def test_reverting_call_raises_decoded_revert(
        self, adapter: ChainAdapter, probe_contract: tuple[Any, Any], stranger: str
    ) -> None:
        _, abi = probe_contract
        deployment = self._deploy(adapter, probe_contract, stranger)  # signer is not admin
        with pytest.raises(ContractRevert) as caught:
            adapter.call(ContractCall(deployment.address, abi, "guarded", (5,)))
        assert caught.value.error_name == "Unauthorized"
        assert caught.value.error_args["code"] == 5
        assert caught.value.chain == adapter.chain.name

    def test_reverting_send_uses_no_nonce(
        self, adapter: ChainAdapter, probe_contract: tuple[Any, Any], stranger: str
    ) -> None:
        _, abi = probe_contract
        deployment = self._deploy(adapter, probe_contract, stranger)
        with pytest.raises(ContractRevert):
            adapter.send(ContractCall(deployment.address, abi, "guarded", (5,)))
        # the next transaction goes through: no nonce was burnt by the refused one
        receipt = adapter.send(ContractCall(deployment.address, abi, "store", (1,)))
        assert receipt.status
