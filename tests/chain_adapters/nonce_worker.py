"""One OS process of the cross-process nonce test (run by test_nonces.py, not collected).

Sends `count` self-transfers from the shared key through an EvmAdapter whose allocator and
store sit on the shared database, then prints the (nonce, tx hash) pairs it got as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys

from eth_account import Account
from sqlalchemy import Engine, create_engine, event

from chain_adapters.base import RawTx
from chain_adapters.devnet import DEVNET_MNEMONIC
from chain_adapters.evm import EvmAdapter, TxPolicy
from chain_adapters.registry import ChainConfig


def engine_for(url: str, schema: str | None) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _wal(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            dbapi_connection.execute("PRAGMA journal_mode=WAL")

        return engine
    engine = create_engine(url, pool_size=2)
    if schema:
        engine = engine.execution_options(schema_translate_map={None: schema})  # type: ignore[assignment]
    return engine


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rpc", required=True)
    parser.add_argument("--chain-id", type=int, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--schema")
    parser.add_argument("--key-index", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args()

    Account.enable_unaudited_hdwallet_features()
    signer = Account.from_mnemonic(DEVNET_MNEMONIC, account_path=f"m/44'/60'/0'/0/{args.key_index}")
    chain = ChainConfig(
        name="nonce-test",
        chain_id=args.chain_id,
        rpc_urls=(args.rpc,),
        confirmations=0,
        block_time=1.0,
        devnet=True,
        timelock_delay=0,
    )
    adapter = EvmAdapter(
        chain,
        engine=engine_for(args.db, args.schema),
        signer=signer,
        tx_policy=TxPolicy(poll_interval=0.02, stuck_after=5.0, timeout=60.0),
    )
    adapter.connect()
    print("ready", flush=True)
    sys.stdin.readline()  # the test says "go" once every worker is ready: maximal contention
    sent = []
    for _ in range(args.count):
        # fixed gas: this exercises nonces, not estimation (which would only slow it down)
        receipt = adapter.send(RawTx(to=signer.address, value=1, gas=21_000), wait="mined")
        sent.append([receipt.nonce, receipt.transaction_hash])
    json.dump(sent, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
