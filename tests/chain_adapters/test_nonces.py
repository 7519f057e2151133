"""The nonce allocator: its rules on one connection, and 4 OS processes x 50 transactions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine, create_engine, select

from chain_adapters.devnet import Devnet
from chain_adapters.evm.nonces import NonceAllocator
from chain_adapters.evm.store import chain_nonces, chain_transactions
from chain_adapters.rpc import rpc_call
from tests.chain_adapters.conftest import database_params, sqlite_engine

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("nonce_worker.py")
SENDER = "0x" + "ab" * 20
PROCESSES, PER_PROCESS = 4, 50
SHARED_KEY_INDEX = 7  # an account no other test sends from


@pytest.fixture(params=database_params())
def database(request: pytest.FixtureRequest, sqlite_url: str) -> tuple[str, str | None]:
    """(url, schema) of a database holding the chain tables: SQLite file, or a PG schema."""
    if request.param == "sqlite":
        engine = sqlite_engine(sqlite_url)
        from chain_adapters.evm.store import chain_metadata

        chain_metadata.create_all(engine)
        engine.dispose()
        return sqlite_url, None
    url, schema = request.getfixturevalue("postgres_schema")
    return url, schema


def open_engine(database: tuple[str, str | None]) -> Engine:
    url, schema = database
    if schema is None:
        return sqlite_engine(url)
    return create_engine(url).execution_options(schema_translate_map={None: schema})  # type: ignore[return-value]


def test_reservation_consumes_only_on_success(database: tuple[str, str | None]) -> None:
    allocator = NonceAllocator(open_engine(database))
    with allocator.reserve(1, SENDER, chain_nonce=5) as lease:
        assert lease.nonce == 5  # new row: starts at the chain's count
    with pytest.raises(RuntimeError), allocator.reserve(1, SENDER, chain_nonce=0) as lease:
        assert lease.nonce == 6
        raise RuntimeError("signing failed")
    with allocator.reserve(1, SENDER, chain_nonce=0) as lease:
        assert lease.nonce == 6  # the failed reservation gave it back
    assert allocator.peek(1, SENDER) == 7
    assert allocator.peek(2, SENDER) is None  # per chain


def test_chain_ahead_resyncs(database: tuple[str, str | None]) -> None:
    allocator = NonceAllocator(open_engine(database))
    with allocator.reserve(1, SENDER, chain_nonce=0):
        pass
    with allocator.reserve(1, SENDER, chain_nonce=10) as lease:  # key used elsewhere
        assert lease.nonce == 10
    assert allocator.resync(1, SENDER, chain_nonce=3) == 11  # never backwards...
    assert allocator.resync(1, SENDER, chain_nonce=3, force=True) == 3  # ...unless told


def test_release_only_the_last_nonce(database: tuple[str, str | None]) -> None:
    allocator = NonceAllocator(open_engine(database))
    for _ in range(3):
        with allocator.reserve(1, SENDER, chain_nonce=0):
            pass
    assert not allocator.release(1, SENDER, 1)  # 2 is already out: a gap must be filled
    assert allocator.release(1, SENDER, 2)
    assert allocator.peek(1, SENDER) == 2


def test_four_processes_share_one_key(
    database: tuple[str, str | None],
    devnet_a: Devnet,
    accounts: list[LocalAccount],
) -> None:
    sender = accounts[SHARED_KEY_INDEX].address
    first_nonce = int(
        rpc_call(devnet_a.rpc_url, "eth_getTransactionCount", [sender, "pending"]), 16
    )
    url, schema = database
    command = [
        sys.executable,
        str(WORKER),
        "--rpc",
        devnet_a.rpc_url,
        "--chain-id",
        str(devnet_a.chain_id),
        "--db",
        url,
        "--key-index",
        str(SHARED_KEY_INDEX),
        "--count",
        str(PER_PROCESS),
    ] + (["--schema", schema] if schema else [])
    workers = [
        subprocess.Popen(
            command,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    for worker in workers:  # wait until each has imported web3 and connected...
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    for worker in workers:  # ...then release them together
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    results: list[Any] = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err[-3000:]
        results.extend(json.loads(out))

    total = PROCESSES * PER_PROCESS
    nonces = sorted(nonce for nonce, _ in results)
    assert nonces == list(range(first_nonce, first_nonce + total))  # contiguous, no duplicate
    assert len({tx for _, tx in results}) == total
    latest = int(rpc_call(devnet_a.rpc_url, "eth_getTransactionCount", [sender, "latest"]), 16)
    assert latest == first_nonce + total  # all mined
    for _, tx_hash in results[:: PER_PROCESS // 5]:
        receipt = rpc_call(devnet_a.rpc_url, "eth_getTransactionReceipt", [tx_hash])
        assert receipt["status"] == "0x1"

    engine = open_engine(database)
    with engine.connect() as conn:
        next_nonce = conn.execute(select(chain_nonces.c.next_nonce)).scalar_one()
        statuses = conn.execute(select(chain_transactions.c.status)).scalars().all()
    assert next_nonce == first_nonce + total
    assert len(statuses) == total and set(statuses) == {"mined"}
