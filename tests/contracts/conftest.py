"""Fixtures for the Solidity contract tests, on top of the session devnets in tests/conftest.py.

`system` deploys every contract and mock once (as a loader scenario) and hands each test the
same just-deployed state; the `chains` fixture underneath reverts whatever the test did.
"""

from __future__ import annotations

from typing import Any

import pytest
from web3 import Web3

from tests.contracts._support import Chain, System, deploy_system

SCENARIO = "contracts_system"


def _deploy(env: Any) -> System:
    w3 = Web3(Web3.HTTPProvider(env.devnets[0].rpc_url))
    return deploy_system(Chain(w3=w3, compiled=env.compiled, accounts=env.accounts))


@pytest.fixture
def system(load_fixture: Any) -> System:
    result: System = load_fixture(SCENARIO, _deploy)
    return result


@pytest.fixture
def chain(system: System) -> Chain:
    return system.chain
