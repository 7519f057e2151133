"""Fixtures for the adapter layer: real Anvil devnets, a real compiled probe contract, real DBs.

`devnet_a` / `devnet_b` are the root conftest's session devnets (chain ids 31337 and 31338),
isolated per test by its `chains` fixture (EVM snapshot/revert). Tests that must kill, stall or
misconfigure a node start a private one with `private_devnet`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine, create_engine, event, text

from chain_adapters.compiler import ContractArtifact, compile_project
from chain_adapters.devnet import Devnet, DevnetSpec, start_devnet
from chain_adapters.evm import EvmAdapter, PoolPolicy, TxPolicy
from chain_adapters.evm.store import chain_metadata
from chain_adapters.registry import ChainConfig

CONTRACTS = Path(__file__).parent / "contracts"

# Short delays so failure paths finish in well under a second.
FAST_POOL = PoolPolicy(
    request_timeout=2.0, max_rounds=2, backoff_initial=0.01, backoff_max=0.05, cooldown=5.0
)
FAST_TX = TxPolicy(poll_interval=0.05, stuck_after=0.4, timeout=30.0)


def chain_config(
    node: Devnet | None = None, *, urls: tuple[str, ...] | None = None, **overrides: Any
) -> ChainConfig:
    """A devnet ChainConfig: finality by 0 confirmations (automine makes every block final)."""
    assert node is not None or urls is not None
    fields: dict[str, Any] = {
        "name": node.name if node else "test-chain",
        "chain_id": node.chain_id if node else 31337,
        "rpc_urls": urls or (node.rpc_url,),  # type: ignore[union-attr]
        "confirmations": 0,
        "block_time": 1.0,
        "devnet": True,
        "timelock_delay": 0,
    }
    fields.update(overrides)
    return ChainConfig(**fields)


@pytest.fixture(scope="session")
def probe_artifacts() -> dict[str, ContractArtifact]:
    project = compile_project([CONTRACTS])
    return {name: project.get(name) for name in ("Probe", "ProbeUser", "Reverting")}


@pytest.fixture(scope="session")
def probe(probe_artifacts: dict[str, ContractArtifact]) -> ContractArtifact:
    return probe_artifacts["Probe"]


@pytest.fixture
def devnet_a(chains: list[Devnet]) -> Devnet:
    return chains[0]


@pytest.fixture
def devnet_b(chains: list[Devnet]) -> Devnet:
    return chains[1]


@pytest.fixture
def private_devnet(tmp_path: Path) -> Iterator[Callable[..., Devnet]]:
    """Start throw-away devnets (stopped at teardown): `private_devnet(chain_id=...)`."""
    started: list[Devnet] = []

    def start(chain_id: int = 31337, name: str | None = None) -> Devnet:
        devnet = start_devnet(
            DevnetSpec(name or f"private-{len(started)}", chain_id), log_dir=tmp_path
        )
        started.append(devnet)
        return devnet

    yield start
    for devnet in started:
        devnet.stop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'chain.db'}"


def sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _wal(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets readers proceed while one writer holds the lock (many processes poll).
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    return engine


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = sqlite_engine(sqlite_url)
    chain_metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_schema(database_url: str | None) -> Iterator[tuple[str, str]]:
    """(url, schema): a fresh schema holding the chain tables, dropped afterwards."""
    if not database_url:
        pytest.skip("DATABASE_URL is not set")
    schema = f"chain_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(database_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    scoped = admin.execution_options(schema_translate_map={None: schema})
    chain_metadata.create_all(scoped)
    try:
        yield database_url, schema
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def signer(accounts: list[LocalAccount]) -> LocalAccount:
    return accounts[0]


def _connected_adapter(devnet: Devnet, engine: Engine, signer: LocalAccount) -> EvmAdapter:
    adapter = EvmAdapter(
        chain_config(devnet),
        engine=engine,
        signer=signer,
        pool_policy=FAST_POOL,
        tx_policy=FAST_TX,
    )
    adapter.connect()
    return adapter


@pytest.fixture
def adapter_a(devnet_a: Devnet, engine: Engine, signer: LocalAccount) -> Iterator[EvmAdapter]:
    adapter = _connected_adapter(devnet_a, engine, signer)
    yield adapter
    adapter.close()


@pytest.fixture
def adapter_b(devnet_b: Devnet, engine: Engine, signer: LocalAccount) -> Iterator[EvmAdapter]:
    adapter = _connected_adapter(devnet_b, engine, signer)
    yield adapter
    adapter.close()


def database_params() -> list[Any]:
    """SQLite always; PostgreSQL when DATABASE_URL is set (marked, so -m can select it)."""
    params: list[Any] = ["sqlite"]
    params.append(
        pytest.param(
            "postgresql",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(
                    not os.environ.get("DATABASE_URL"), reason="DATABASE_URL is not set"
                ),
            ],
        )
    )
    return params
