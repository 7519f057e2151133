"""Transaction lifecycle on Anvil: dropped, stuck, refused, crashed-before-broadcast, finality."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine

from chain_adapters.base import RawTx, Receipt
from chain_adapters.devnet import Devnet
from chain_adapters.evm import EvmAdapter, TxPolicy
from chain_adapters.evm.errors import FeeCapExceeded, NonceGap
from chain_adapters.evm.store import TxRecord
from chain_adapters.exceptions import TransactionError, TransactionTimeout
from chain_adapters.rpc import rpc_call
from tests.chain_adapters.conftest import FAST_POOL, FAST_TX, chain_config

GWEI = 10**9


def eventually(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.fixture
def manual_mining(devnet_a: Devnet) -> Iterator[str]:
    """Automine off for the test. Restored afterwards, and the pool emptied: evm_revert resets
    neither, and a transaction left in the pool would collide with the next test's nonces."""
    rpc_call(devnet_a.rpc_url, "evm_setAutomine", [False])
    try:
        yield devnet_a.rpc_url
    finally:
        rpc_call(devnet_a.rpc_url, "anvil_dropAllTransactions")
        rpc_call(devnet_a.rpc_url, "evm_setAutomine", [True])


@pytest.fixture
def background() -> Iterator[Callable[..., Future[Any]]]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield pool.submit


def rows(adapter: EvmAdapter, signer: LocalAccount) -> list[TxRecord]:
    assert adapter.store is not None
    return adapter.store.for_sender(adapter.chain_id, signer.address)


def test_dropped_transaction_is_rebroadcast_and_mined(
    adapter_a: EvmAdapter,
    signer: LocalAccount,
    accounts: list[LocalAccount],
    manual_mining: str,
    background: Callable[..., Future[Receipt]],
) -> None:
    future = background(adapter_a.send, RawTx(to=accounts[2].address, value=5), wait="mined")
    first = eventually(lambda: rows(adapter_a, signer))[0]
    eventually(lambda: rpc_call(manual_mining, "eth_getTransactionByHash", [first.tx_hash]))
    rpc_call(manual_mining, "anvil_dropTransaction", [first.tx_hash])
    assert rpc_call(manual_mining, "eth_getTransactionByHash", [first.tx_hash]) is None
    rpc_call(manual_mining, "evm_setAutomine", [True])

    receipt = future.result(timeout=20)
    assert receipt.status
    assert receipt.transaction_hash == first.tx_hash  # the same signed bytes, rebroadcast
    (row,) = rows(adapter_a, signer)
    assert row.status == "mined" and row.receipt_block_hash == receipt.block_hash


def test_stuck_transaction_is_replaced_with_bumped_fees(
    adapter_a: EvmAdapter,
    signer: LocalAccount,
    accounts: list[LocalAccount],
    manual_mining: str,
    background: Callable[..., Future[Receipt]],
) -> None:
    future = background(adapter_a.send, RawTx(to=accounts[2].address, value=7), wait="mined")
    # not mined after stuck_after: rebroadcast; still not mined after another: replaced
    original, replacement = eventually(
        lambda: (r := rows(adapter_a, signer)) and len(r) >= 2 and r
    )[:2]
    rpc_call(manual_mining, "evm_mine")

    receipt = future.result(timeout=20)
    assert receipt.transaction_hash == replacement.tx_hash
    assert replacement.nonce == original.nonce and replacement.attempt == 1
    assert original.max_fee_per_gas and replacement.max_fee_per_gas
    assert original.max_priority_fee_per_gas and replacement.max_priority_fee_per_gas
    assert replacement.max_fee_per_gas * 8 >= original.max_fee_per_gas * 9
    assert replacement.max_priority_fee_per_gas * 8 >= original.max_priority_fee_per_gas * 9
    statuses = {r.tx_hash: r.status for r in rows(adapter_a, signer)}
    assert statuses[original.tx_hash] == "replaced"
    assert statuses[replacement.tx_hash] == "mined"
    assert adapter_a.get_balance(accounts[2].address) > 0


def test_unmined_transaction_times_out_with_its_hash(
    devnet_a: Devnet,
    engine: Engine,
    signer: LocalAccount,
    manual_mining: str,
) -> None:
    policy = TxPolicy(poll_interval=0.05, stuck_after=0.2, timeout=0.6)
    adapter = EvmAdapter(chain_config(devnet_a), engine=engine, signer=signer, tx_policy=policy)
    with pytest.raises(TransactionTimeout) as caught:
        adapter.send(RawTx(to=signer.address, value=1))
    assert caught.value.tx_hash in {r.tx_hash for r in rows(adapter, signer)}
    assert devnet_a.name in str(caught.value)


def test_transaction_persisted_before_broadcast_is_resumed(
    adapter_a: EvmAdapter, signer: LocalAccount, accounts: list[LocalAccount]
) -> None:
    # what a crash between commit and broadcast leaves behind: a signed row the node never saw
    from chain_adapters.evm.transactions import UnsignedTx

    tx = UnsignedTx(to=accounts[3].address, data=b"", value=11, gas=21_000)
    record = adapter_a.transactions.prepare(signer, tx)
    assert (
        rpc_call(adapter_a.chain.rpc_urls[0], "eth_getTransactionByHash", [record.tx_hash]) is None
    )

    (receipt,) = adapter_a.resume_pending()
    assert receipt.transaction_hash == record.tx_hash
    assert rows(adapter_a, signer)[0].status == "confirmed"
    assert adapter_a.resume_pending() == []  # nothing left


def test_unbroadcast_lower_nonce_does_not_block_later_ones(
    adapter_a: EvmAdapter, signer: LocalAccount, accounts: list[LocalAccount]
) -> None:
    from chain_adapters.evm.transactions import UnsignedTx

    lost = adapter_a.transactions.prepare(  # persisted, then the RPC "failed" before broadcast
        signer, UnsignedTx(to=accounts[3].address, data=b"", value=1, gas=21_000)
    )
    receipt = adapter_a.send(RawTx(to=signer.address, value=1))  # nonce + 1: waits on the gap
    assert receipt.nonce == lost.nonce + 1
    mined = rpc_call(adapter_a.chain.rpc_urls[0], "eth_getTransactionReceipt", [lost.tx_hash])
    assert mined is not None and mined["status"] == "0x1"


def test_refused_broadcast_gives_the_nonce_back(
    adapter_a: EvmAdapter, signer: LocalAccount
) -> None:
    adapter_a.send(RawTx(to=signer.address, value=1))
    nonce = adapter_a.transaction_count(signer.address)
    too_much = adapter_a.get_balance(signer.address) * 2
    with pytest.raises(TransactionError, match="refused") as caught:
        adapter_a.send(RawTx(to=signer.address, value=too_much, gas=21_000))
    assert caught.value.tx_hash is not None
    receipt = adapter_a.send(RawTx(to=signer.address, value=1))
    assert receipt.nonce == nonce  # reused: no gap
    assert [r.status for r in rows(adapter_a, signer)] == ["confirmed", "failed", "confirmed"]


def test_nonce_used_outside_the_system_is_resynced(
    adapter_a: EvmAdapter, signer: LocalAccount, accounts: list[LocalAccount]
) -> None:
    adapter_a.send(RawTx(to=signer.address, value=1))  # the allocator row now exists
    external_nonce = adapter_a.transaction_count(signer.address)
    external = signer.sign_transaction(
        {
            "chainId": adapter_a.chain_id,
            "nonce": external_nonce,
            "to": accounts[4].address,
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": 10 * GWEI,
            "maxPriorityFeePerGas": GWEI,
        }
    )
    adapter_a.send_presigned(bytes(external.raw_transaction))

    receipt = adapter_a.send(RawTx(to=signer.address, value=2))
    assert receipt.nonce == external_nonce + 1
    statuses = [(r.nonce, r.status) for r in rows(adapter_a, signer)]
    assert (external_nonce, "dropped") in statuses and (external_nonce + 1, "confirmed") in statuses


def test_fee_cap_below_base_fee_fails_before_using_a_nonce(
    devnet_a: Devnet, engine: Engine, signer: LocalAccount
) -> None:
    pending = rpc_call(devnet_a.rpc_url, "eth_getBlockByNumber", ["pending", False])
    rpc_call(devnet_a.rpc_url, "anvil_setNextBlockBaseFeePerGas", [hex(10 * GWEI)])
    rpc_call(devnet_a.rpc_url, "evm_mine")
    config = chain_config(devnet_a, max_fee_gwei=Decimal("5"))
    adapter = EvmAdapter(
        config, engine=engine, signer=signer, pool_policy=FAST_POOL, tx_policy=FAST_TX
    )
    try:
        with pytest.raises(FeeCapExceeded, match="max_fee_gwei=5"):
            adapter.send(RawTx(to=signer.address, value=1))
    finally:  # Anvil keeps its next base fee across evm_revert: put it back
        rpc_call(devnet_a.rpc_url, "anvil_setNextBlockBaseFeePerGas", [pending["baseFeePerGas"]])
    assert rows(adapter, signer) == []
    assert adapter.transactions.allocator.peek(adapter.chain_id, signer.address) is None


def test_legacy_fee_model_sends_type_0(
    devnet_a: Devnet, engine: Engine, signer: LocalAccount
) -> None:
    config = chain_config(devnet_a, fee_model="legacy")
    adapter = EvmAdapter(
        config, engine=engine, signer=signer, pool_policy=FAST_POOL, tx_policy=FAST_TX
    )
    receipt = adapter.send(RawTx(to=signer.address, value=1))
    tx = rpc_call(devnet_a.rpc_url, "eth_getTransactionByHash", [receipt.transaction_hash])
    assert tx["type"] == "0x0"
    (row,) = rows(adapter, signer)
    assert row.gas_price is not None and row.max_fee_per_gas is None


def test_waits_for_confirmations_before_final(
    devnet_a: Devnet,
    engine: Engine,
    signer: LocalAccount,
    background: Callable[..., Future[Receipt]],
) -> None:
    config = chain_config(devnet_a, confirmations=2)
    adapter = EvmAdapter(
        config, engine=engine, signer=signer, pool_policy=FAST_POOL, tx_policy=FAST_TX
    )
    future = background(adapter.send, RawTx(to=signer.address, value=1))
    eventually(lambda: (r := rows(adapter, signer)) and r[0].status == "mined")
    assert not future.done()  # mined, but only 0 blocks on top
    rpc_call(devnet_a.rpc_url, "anvil_mine", ["0x2"])
    receipt = future.result(timeout=10)
    assert adapter.head() - receipt.block_number >= 2
    assert rows(adapter, signer)[0].status == "confirmed"


def test_transaction_reorged_out_is_mined_again(
    devnet_a: Devnet,
    engine: Engine,
    signer: LocalAccount,
    background: Callable[..., Future[Receipt]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = chain_config(devnet_a, confirmations=2)
    adapter = EvmAdapter(
        config, engine=engine, signer=signer, pool_policy=FAST_POOL, tx_policy=FAST_TX
    )
    future = background(adapter.send, RawTx(to=signer.address, value=1))
    first = eventually(lambda: (r := rows(adapter, signer)) and r[0].status == "mined" and r[0])
    rpc_call(devnet_a.rpc_url, "anvil_rollback", [1])  # the block holding it is gone
    assert rpc_call(devnet_a.rpc_url, "eth_getTransactionReceipt", [first.tx_hash]) is None

    # the waiter notices, rebroadcasts, and automine includes it again (the new block may even
    # get the old hash when mined within the same second: same parent, content and timestamp)
    eventually(lambda: rpc_call(devnet_a.rpc_url, "eth_getTransactionReceipt", [first.tx_hash]))
    assert "disappeared (reorg)" in caplog.text
    assert not future.done()  # mined again, but not final yet
    rpc_call(devnet_a.rpc_url, "anvil_mine", ["0x2"])
    receipt = future.result(timeout=10)
    assert receipt.transaction_hash == first.tx_hash
    assert adapter.block(receipt.block_number).hash == receipt.block_hash
    assert rows(adapter, signer)[0].status == "confirmed"


def test_store_ahead_of_a_reverted_devnet_is_reported_not_awaited(
    adapter_a: EvmAdapter, signer: LocalAccount
) -> None:
    url = adapter_a.chain.rpc_urls[0]
    snapshot = rpc_call(url, "evm_snapshot")
    first = adapter_a.send(RawTx(to=signer.address, value=1))
    adapter_a.send(RawTx(to=signer.address, value=1))
    rpc_call(url, "evm_revert", [snapshot])  # the chain forgets both; the nonce store does not
    try:
        started = time.monotonic()
        with pytest.raises(
            NonceGap, match=rf"waits for nonce\(s\) {first.nonce}-{first.nonce + 1}"
        ):
            adapter_a.send(RawTx(to=signer.address, value=1))
        assert time.monotonic() - started < 5  # one stuck period, not the 30 s timeout

        assert adapter_a.reset_nonce() == first.nonce
        assert adapter_a.send(RawTx(to=signer.address, value=1)).nonce == first.nonce
    finally:
        rpc_call(url, "anvil_dropAllTransactions")  # the orphaned future-nonce transaction
