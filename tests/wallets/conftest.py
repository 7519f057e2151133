"""Wallet tests: the real app and session database of tests/backend, wallets signed in with
SIWE through the real endpoints, and the providers' real HTTP receiver and clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from backend.app import create_app
from backend.config import Settings
from chain_adapters.deploy import DeployedContract, record_deployment
from chain_adapters.devnet import Devnet
from chain_adapters.registry import dump_chains
from tests.auth.conftest import bearer, sign_in
from tests.providers.conftest import (  # noqa: F401 - fixtures re-exported for these tests
    FakeClock,
    _no_credagg_env,
    app,
    backend_database_url,
    client,
    make_settings,
    session_factory,
    settings,
    start_worker,
)
from tests.risk.conftest import (  # noqa: F401 - the devnet driver and the watcher's database
    engine,
    factory,
    lending,
    market,
    watcher_settings,
)


@dataclass(frozen=True)
class Wallet:
    address: str  # lower-case, as the API names wallets
    headers: dict[str, str]


def new_wallet(api: TestClient) -> Wallet:
    """A fresh wallet with a session (SIWE through GET /v1/auth/nonce and POST /v1/auth/siwe)."""
    account = Account.create()
    return Wallet(account.address.lower(), bearer(sign_in(api, account)))


@pytest.fixture
def wallet(client: TestClient) -> Wallet:  # noqa: F811
    return new_wallet(client)


@pytest.fixture
def other_wallet(client: TestClient) -> Wallet:  # noqa: F811
    return new_wallet(client)


# A real app on the watcher's database, reading the devnets ------------------------------------


@pytest.fixture
def chain_client(
    watcher_settings: Settings,  # noqa: F811 - the fixtures imported above
    engine: Engine,  # noqa: F811
    chains: list[Devnet],
    market: Any,  # noqa: F811
    tmp_path: Path,
) -> Iterator[TestClient]:
    """The API on the watcher tests' fresh database, with a chains file and CreditAggregator
    manifests, so `/v1/me/risk` reads the wallet's loans from the devnets like a credit request."""
    data_dir = tmp_path / "chain-data"
    chains_file = tmp_path / "chains.toml"
    configs = [devnet.chain_config() for devnet in chains]
    chains_file.write_text(dump_chains(configs))
    for config in configs:
        record_deployment(
            data_dir,
            config.name,
            DeployedContract(
                label="CreditAggregator",
                contract="CreditAggregator",
                chain_id=config.chain_id,
                address=market.chains[config.chain_id].contracts["CreditAggregator"],
                salt="0x" + "00" * 32,
                init_code_hash="0x" + "00" * 32,
                runtime_code_hash="0x" + "00" * 32,
                tx_hash=None,
                block_number=None,
                created=False,
            ),
        )
    chain_settings = watcher_settings.model_copy(
        update={"chains_file": chains_file, "data_dir": data_dir}
    )
    with TestClient(create_app(chain_settings, engine=engine)) as api:
        yield api
