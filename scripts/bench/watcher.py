"""Backfill throughput of the watcher vs a naive web3.py loop, on a real Anvil and PostgreSQL.

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python scripts/bench/watcher.py [--blocks 5000 --per-block 20]

Starts a fresh Anvil, deploys a tiny contract (compiled with chain_adapters.compiler) that emits
ReceiptAnchor's `Anchored` event N times per call, and sends one call per block (JSON-RPC
batches of sends, so generating 100,000 logs takes seconds). Then, each into its own throwaway
PostgreSQL database created next to DATABASE_URL (dropped afterwards):

* watcher: `backend.watcher.backfill` — adaptive eth_getLogs ranges (from a 200-block probe,
  doubling towards ~10,000 logs per range), the next final range read ahead on a helper thread
  while the current one is written, bulk inserts, the anchors projections (head and final),
  cursor per range transaction;
* naive: the loop people write first — per block, `w3.eth.get_block` + `w3.eth.get_logs` for
  that block, each log added through the ORM, one commit per block; no projections.
* ablation (`--no-ablation` skips it): the watcher again, with the effect tables' log checks
  put back to the foreign keys' per-row triggers (as before migration 0016_watcher_speed), to
  show in the same run what the statement-level checks are worth.

Then the steady state, on the watcher's database: Anvil mines one block a second
(`evm_setIntervalMining`), a producer sends `emitMany` at a steady rate, and the live step (the
body of `watcher.ingest`, with the configured confirmations) runs once a second; every second a
sampler reads the node's head and the committed cursor and records head - cursor.

Prints markdown tables (logs, seconds, logs/s, ratio; max and mean lag beside the
confirmations). Targets (issue 6): watcher >= 10,000 logs/s into PostgreSQL and >= 10x the
naive loop; steady-state lag <= confirmations + 1 block.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
from backend.watcher.models import AnchoredEffect, WatcherCursor, WatcherLog  # noqa: E402
from backend.watcher.projections import default_registry  # noqa: E402
from backend.watcher.ranges import AdaptiveRange  # noqa: E402
from chain_adapters.compiler import compile_project  # noqa: E402
from chain_adapters.devnet import Devnet, DevnetSpec, running_devnets  # noqa: E402
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


#: Effect tables the bench's projections write (the anchors projections, head and final).
EFFECT_TABLES = ("watcher_anchored", "watcher_final_anchored")


def log_checks(engine: Any) -> str:
    """How PostgreSQL checks that effect rows have their log: per statement (0016) or per row."""
    with engine.connect() as connection:
        statement = connection.scalar(
            text(
                "SELECT count(*) FROM pg_trigger WHERE tgname = 'watcher_anchored_log_check_insert'"
            )
        )
    return "per statement" if statement else "per row"


def use_row_checks(engine: Any) -> None:
    """Undo 0016's statement-level log checks on the bench's effect tables (the ablation)."""
    with engine.begin() as connection:
        for table in EFFECT_TABLES:
            connection.execute(text(f'ALTER TABLE "{table}" ENABLE TRIGGER ALL'))
            for event in ("insert", "update"):
                connection.execute(
                    text(f'DROP TRIGGER IF EXISTS "{table}_log_check_{event}" ON "{table}"')
                )


def run_watcher(
    url: str, rpc_url: str, chain: Any, address: str, first: int, *, row_checks: bool = False
) -> tuple[int, float, str]:
    settings = Settings(_env_file=None, environment="test", database_url=url)
    migrate(settings)
    engine = create_db_engine(settings)
    try:
        if row_checks:
            use_row_checks(engine)
        checks = log_checks(engine)
        factory = create_session_factory(engine)
        watcher = ChainWatcher(EvmAdapter(chain), [address], default_registry())
        started = time.perf_counter()
        backfill(factory, watcher, from_block=first, ranges=AdaptiveRange(span=200))
        seconds = time.perf_counter() - started
        with factory() as session:
            logs = int(session.scalar(select(func.count()).select_from(WatcherLog)) or 0)
            effects = int(session.scalar(select(func.count()).select_from(AnchoredEffect)) or 0)
        assert effects == logs, f"{effects} effects for {logs} logs"
        return logs, seconds, checks
    finally:
        engine.dispose()


@dataclass
class SteadyState:
    seconds: float
    blocks: int
    logs: int
    samples: list[int]
    confirmations: int

    @property
    def max_lag(self) -> int:
        return max(self.samples)

    @property
    def mean_lag(self) -> float:
        return statistics.fmean(self.samples)


def rpc(http: requests.Session, url: str, method: str, params: list[Any]) -> Any:
    answer = http.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=60
    ).json()
    if "error" in answer:
        raise RuntimeError(f"{method} failed: {answer['error']}")
    return answer["result"]


def run_steady(
    url: str,
    devnet: Devnet,
    contract: Any,
    address: str,
    *,
    confirmations: int,
    seconds: float,
    tx_per_second: float,
    per_tx: int,
) -> SteadyState:
    """Live ingestion at 1 block/s under steady load; (head - cursor) sampled every second.

    Runs on the database the backfill filled, so it also exercises the backfill -> live
    hand-off. The live loop is what beat does: one `backfill(..., until_head=True)` (the body
    of `watcher.ingest`) per `watcher_interval` of 1 s.
    """
    settings = Settings(_env_file=None, environment="test", database_url=url)
    engine = create_db_engine(settings)
    chain = devnet.chain_config(confirmations=confirmations, block_time=1.0)
    watcher = ChainWatcher(EvmAdapter(chain), [address], default_registry())
    factory = create_session_factory(engine)
    stop = threading.Event()
    errors: list[BaseException] = []
    samples: list[int] = []
    tx = {
        "from": SENDER,
        "to": contract.address,
        "data": contract.encode_abi("emitMany", args=[per_tx]),
        "gas": hex(60_000 + per_tx * 4_000),
    }

    def guarded(body: Any) -> Any:
        def run() -> None:
            try:
                body()
            except BaseException as exc:  # reported after the run
                errors.append(exc)
                stop.set()

        return run

    def ticks(interval: float, action: Any) -> None:
        next_at = time.monotonic()
        while not stop.is_set():
            action()
            next_at += interval
            stop.wait(max(0.0, next_at - time.monotonic()))

    def produce() -> None:
        with requests.Session() as http:
            ticks(
                1.0 / tx_per_second, lambda: rpc(http, devnet.rpc_url, "eth_sendTransaction", [tx])
            )

    def ingest() -> None:
        ticks(1.0, lambda: backfill(factory, watcher, from_block=0, until_head=True))

    def sample() -> None:
        w3 = Web3(Web3.HTTPProvider(devnet.rpc_url))

        def once() -> None:
            head = int(w3.eth.block_number)
            with factory() as session:
                cursor = session.get(WatcherCursor, watcher.chain_id)
                assert cursor is not None
                samples.append(max(head - cursor.block_number, 0))

        stop.wait(2.0)  # the first tick catches up with the blocks mined since the backfill
        ticks(1.0, once)

    with requests.Session() as http:
        rpc(http, devnet.rpc_url, "evm_setAutomine", [False])
        rpc(http, devnet.rpc_url, "evm_setIntervalMining", [1])
        first = int(rpc(http, devnet.rpc_url, "eth_blockNumber", []), 16)
        with factory() as session:
            logs_before = int(session.scalar(select(func.count()).select_from(WatcherLog)) or 0)
        threads = [
            threading.Thread(target=guarded(f), daemon=True) for f in (produce, ingest, sample)
        ]
        started = time.perf_counter()
        try:
            for thread in threads:
                thread.start()
            stop.wait(seconds)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
            rpc(http, devnet.rpc_url, "evm_setIntervalMining", [0])
            rpc(http, devnet.rpc_url, "evm_setAutomine", [True])
        elapsed = time.perf_counter() - started
        last = int(rpc(http, devnet.rpc_url, "eth_blockNumber", []), 16)
    try:
        if errors:
            raise errors[0]
        with factory() as session:
            logs = int(session.scalar(select(func.count()).select_from(WatcherLog)) or 0)
        return SteadyState(elapsed, last - first, logs - logs_before, samples, confirmations)
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
    parser.add_argument("--steady-seconds", type=float, default=20.0)
    parser.add_argument("--steady-tps", type=float, default=5.0, help="transactions per second")
    parser.add_argument("--confirmations", type=int, default=2)
    parser.add_argument(
        "--ablation",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time the backfill with per-row log checks (as before 0016_watcher_speed)",
    )
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
            ours, ours_s, checks = run_watcher(url, devnet.rpc_url, chain, address, first)
            steady = run_steady(
                url,
                devnet,
                contract,
                address,
                confirmations=args.confirmations,
                seconds=args.steady_seconds,
                tx_per_second=args.steady_tps,
                per_tx=args.per_block,
            )
        with throwaway_database(args.database_url) as url:
            naive, naive_s = run_naive(url, devnet.rpc_url, devnet.chain_id, address, first, last)
        row_s = None
        if args.ablation and checks == "per statement":
            with throwaway_database(args.database_url) as url:
                _, row_s, _ = run_watcher(
                    url, devnet.rpc_url, chain, address, first, row_checks=True
                )
    assert ours == naive == args.blocks * args.per_block, (ours, naive)
    ours_rate, naive_rate = ours / ours_s, naive / naive_s
    print(f"generated {ours:,} logs in {last - first + 1:,} blocks in {generated:.1f}s\n")
    print("| ingestion into PostgreSQL | logs | seconds | logs/s | vs naive |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| watcher backfill (adaptive eth_getLogs, COPY, projections; log checks {checks}) | "
        f"{ours:,} | {ours_s:.2f} | {ours_rate:,.0f} | {ours_rate / naive_rate:.1f}x |"
    )
    if row_s is not None:
        row_rate = ours / row_s
        print(
            f"| same, log checks per row (the foreign keys' own triggers) | {ours:,} | "
            f"{row_s:.2f} | {row_rate:,.0f} | {row_rate / naive_rate:.1f}x |"
        )
    print(
        f"| naive web3.py loop (get_logs per block, ORM) | {naive:,} | {naive_s:.2f} | "
        f"{naive_rate:,.0f} | 1.0x |"
    )
    target = steady.confirmations + 1
    print(
        f"\nsteady state: {steady.seconds:.0f}s, {steady.blocks} blocks (1 block/s), "
        f"{steady.logs:,} logs ingested live, {len(steady.samples)} lag samples\n"
    )
    print("| steady-state lag (head - cursor) | max | mean | confirmations | target |")
    print("|---|---:|---:|---:|---:|")
    verdict = "met" if steady.max_lag <= target else "MISSED"
    print(
        f"| watcher live step every 1 s | {steady.max_lag} | {steady.mean_lag:.2f} | "
        f"{steady.confirmations} | <= {target} ({verdict}) |"
    )


if __name__ == "__main__":
    main()
