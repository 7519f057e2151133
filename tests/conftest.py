"""Session-wide real parts: two Anvil devnets, one compile of the project, EVM isolation.

Every test that touches a chain asks for `chains` (or `load_fixture`) and starts from a snapshot
that is reverted afterwards, so tests never see each other's transactions.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain_adapters.compiler import CompiledProject, compile_project
from chain_adapters.devnet import (
    DEFAULT_DEVNETS,
    DEVNET_MNEMONIC,
    Devnet,
    start_devnets,
    stop_devnets,
)
from hardhat_fixtures.loader import FixtureLoader

pytest_plugins = ("tests.support.webhooks", "tests.support.credit_market")

Account.enable_unaudited_hdwallet_features()


def devnet_accounts(count: int = 10) -> list[LocalAccount]:
    """Anvil's funded accounts, derived from its well-known mnemonic."""
    return [
        Account.from_mnemonic(DEVNET_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        for i in range(count)
    ]


@dataclass
class ScenarioEnv:
    """What a scenario needs to deploy: the devnets, the compiled contracts, funded keys.

    The project is compiled on first use, so tests that never deploy our contracts never wait
    for the compiler.
    """

    devnets: list[Devnet]
    accounts: list[LocalAccount]

    @functools.cached_property
    def compiled(self) -> CompiledProject:
        return compile_project()


@pytest.fixture(scope="session")
def compiled() -> CompiledProject:
    return compile_project()


@pytest.fixture(scope="session")
def devnets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Devnet]]:
    started = start_devnets(DEFAULT_DEVNETS, log_dir=tmp_path_factory.mktemp("anvil"))
    try:
        yield started
    finally:
        stop_devnets(started)


@pytest.fixture(scope="session")
def accounts() -> list[LocalAccount]:
    return devnet_accounts()


@pytest.fixture(scope="session")
def fixture_loader(devnets: list[Devnet], accounts: list[LocalAccount]) -> FixtureLoader:
    import hardhat_fixtures.scenarios  # noqa: F401  - registers the named scenarios

    return FixtureLoader([d.rpc_url for d in devnets], env=ScenarioEnv(devnets, accounts))


@pytest.fixture
def chains(
    request: pytest.FixtureRequest, fixture_loader: FixtureLoader, devnets: list[Devnet]
) -> Iterator[list[Devnet]]:
    """Both devnets, in a state that is reverted after the test. A test that loads no scenario
    starts from the base state, with no scenario's contracts deployed."""
    fixture_loader.begin_test(clean="load_fixture" not in request.fixturenames)
    try:
        yield devnets
    finally:
        fixture_loader.end_test()


@pytest.fixture
def load_fixture(fixture_loader: FixtureLoader, chains: list[Devnet]):  # type: ignore[no-untyped-def]
    """`load_fixture("two_chain_market")` -> the scenario's result, freshly restored."""
    return fixture_loader.load


@pytest.fixture
def w3(chains: list[Devnet]) -> Web3:
    return Web3(Web3.HTTPProvider(chains[0].rpc_url))


@pytest.fixture
def w3b(chains: list[Devnet]) -> Web3:
    return Web3(Web3.HTTPProvider(chains[1].rpc_url))


@pytest.fixture(scope="session")
def database_url() -> str | None:
    """PostgreSQL when CI sets DATABASE_URL, else None (tests then use a SQLite file)."""
    return os.environ.get("DATABASE_URL")
