"""Backfill throughput of the watcher vs a naive web3.py loop, on a real Anvil and PostgreSQL.

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python scripts/bench/watcher.py [--blocks 5000 --per-block 20]

Starts a fresh Anvil, deploys a tiny contract (compiled with chain_adapters.compiler) that emits
ReceiptAnchor's `Anchored` event N times per call, and sends one call per block (JSON-RPC
batches of sends, so generating 100,000 logs takes seconds). Then, each into its own throwaway
PostgreSQL database created next to DATABASE_URL (dropped afterwards):

* watcher: `backend.watcher.backfill` — adaptive eth_getLogs ranges, bulk inserts, the anchors
  projections (head and final), cursor per range transaction;
* naive: the loop people write first — per block, `w3.eth.get_block` + `w3.eth.get_logs` for
  that block, each log added through the ORM, one commit per block; no projections.

Prints a markdown table (logs, seconds, logs/s, ratio). Targets (issue 6): watcher >= 10,000
logs/s into PostgreSQL and >= 10x the naive loop.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from web3 import Web3

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from backend.config import Settings  # noqa: E402
from backend.db import create_db_engine, create_session_factory, migrate  # noqa: E402
from backend.watcher.backfill import backfill  # noqa: E402
from backend.watcher.ingest import ChainWatcher  # noqa: E402
from backend.watcher.models import AnchoredEffect, WatcherLog  # noqa: E402
from backend.watcher.projections import default_registry  # noqa: E402
from backend.watcher.ranges import AdaptiveRange  # noqa: E402
from chain_adapters.compiler import compile_project  # noqa: E402
from chain_adapters.devnet import DevnetSpec, running_devnets  # noqa: E402
from chain_adapters.evm.adapter import EvmAdapter  # noqa: E402

EMITTER = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// Emits ReceiptAnchor's event signature many times per call (benchmark load only).
contract BenchEmitter {
    event Anchored(uint64 indexed treeSize, bytes32 root, uint64 prevSize, bytes32 prevRoot);
    uint64 private _size;

    function emitMany(uint64 count) external {
        uint64 size = _size;
        for (uint64 i = 0; i < count; ++i) {
            emit Anchored(size + 1, bytes32(uint256(size + 1)), size, bytes32(uint256(size)));
            ++size;
        }
        _size = size;
    }
}
"""
SENDER = Web3.to_checksum_address("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")  # Anvil #0


@contextmanager
def throwaway_database(base_url: str) -> Iterator[str]:
    base = make_url(Settings(_env_file=None, database_url=base_url).effective_database_url)
    name = f"credagg_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def deploy_emitter(w3: Web3) -> tuple[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "BenchEmitter.sol").write_text(EMITTER, encoding="utf-8")
        artifact = compile_project([Path(tmp)], use_cache=False).get("BenchEmitter")
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor().transact({"from": SENDER}))
    address = str(receipt["contractAddress"])
    contract = w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact.abi)
    return address, contract


def generate(rpc_url: str, contract: Any, *, blocks: int, per_block: int) -> None:
    """One emitMany call per block: automine off, then send + `evm_mine`, one pair per block.

    (With automine on, Anvil mines a deep pool of sends slowly, far below one block per send.)
    """
    data = contract.encode_abi("emitMany", args=[per_block])
    tx = {
        "from": SENDER,
        "to": contract.address,
        "data": data,
        "gas": hex(60_000 + per_block * 4_000),
    }
    with requests.Session() as http:

        def call(method: str, params: list[Any]) -> Any:
            answer = http.post(
                rpc_url,
                json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
                timeout=60,
            ).json()
            if "error" in answer:
                raise RuntimeError(f"{method} failed: {answer['error']}")
            return answer["result"]

        call("evm_setAutomine", [False])
        try:
            for _ in range(blocks):
                call("eth_sendTransaction", [tx])
                call("evm_mine", [])
        finally:
            call("evm_setAutomine", [True])


def run_watcher(url: str, rpc_url: str, chain: Any, address: str, first: int) -> tuple[int, float]:
    settings = Settings(_env_file=None, environment="test", database_url=url)
    migrate(settings)
    engine = create_db_engine(settings)
    try:
        factory = create_session_factory(engine)
        watcher = ChainWatcher(EvmAdapter(chain), [address], default_registry())
        started = time.perf_counter()
        backfill(factory, watcher, from_block=first, ranges=AdaptiveRange(span=2_000))
        seconds = time.perf_counter() - started
        with factory() as session:
            logs = int(session.scalar(select(func.count()).select_from(WatcherLog)) or 0)
            effects = int(session.scalar(select(func.count()).select_from(AnchoredEffect)) or 0)
        assert effects == logs, f"{effects} effects for {logs} logs"
        return logs, seconds
    finally:
        engine.dispose()


def run_naive(
    url: str, rpc_url: str, chain_id: int, address: str, first: int, last: int
) -> tuple[int, float]:
    settings = Settings(_env_file=None, environment="test", database_url=url)
    migrate(settings)
    engine = create_db_engine(settings)
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    try:
        factory = create_session_factory(engine)
        stored = 0
        started = time.perf_counter()
        for number in range(first, last + 1):
            block = w3.eth.get_block(number)
            logs = w3.eth.get_logs(
                {
                    "fromBlock": number,
                    "toBlock": number,
                    "address": Web3.to_checksum_address(address),
                }
            )
            with factory() as session:
                for log in logs:
                    topics = [Web3.to_hex(t) for t in log["topics"]] + [None] * 4
                    session.add(
                        WatcherLog(
                            chain_id=chain_id,
                            block_hash=Web3.to_hex(block["hash"]),
                            log_index=int(log["logIndex"]),
                            block_number=number,
                            transaction_hash=Web3.to_hex(log["transactionHash"]),
                            address=str(log["address"]),
                            topic0=topics[0],
                            topic1=topics[1],
                            topic2=topics[2],
                            topic3=topics[3],
                            data=bytes(log["data"]),
                        )
                    )
                    stored += 1
                session.commit()
        return stored, time.perf_counter() - started
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=5_000)
    parser.add_argument("--per-block", type=int, default=20)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        raise SystemExit("the benchmark measures PostgreSQL: give --database-url postgresql://...")
    spec = DevnetSpec(name="bench", chain_id=31_999)
    with running_devnets([spec]) as (devnet,):
        w3 = Web3(Web3.HTTPProvider(devnet.rpc_url))
        address, contract = deploy_emitter(w3)
        first = int(w3.eth.block_number) + 1
        started = time.perf_counter()
        generate(devnet.rpc_url, contract, blocks=args.blocks, per_block=args.per_block)
        generated = time.perf_counter() - started
        last = int(w3.eth.block_number)
        chain = devnet.chain_config(confirmations=0)
        with throwaway_database(args.database_url) as url:
            ours, ours_s = run_watcher(url, devnet.rpc_url, chain, address, first)
        with throwaway_database(args.database_url) as url:
            naive, naive_s = run_naive(url, devnet.rpc_url, devnet.chain_id, address, first, last)
    assert ours == naive == args.blocks * args.per_block, (ours, naive)
    ours_rate, naive_rate = ours / ours_s, naive / naive_s
    print(f"generated {ours:,} logs in {last - first + 1:,} blocks in {generated:.1f}s\n")
    print("| ingestion into PostgreSQL | logs | seconds | logs/s | vs naive |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| watcher backfill (adaptive eth_getLogs, bulk, projections) | {ours:,} | "
        f"{ours_s:.2f} | {ours_rate:,.0f} | {ours_rate / naive_rate:.1f}x |"
    )
    print(
        f"| naive web3.py loop (get_logs per block, ORM) | {naive:,} | {naive_s:.2f} | "
        f"{naive_rate:,.0f} | 1.0x |"
    )


if __name__ == "__main__":
    main()
