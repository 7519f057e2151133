"""The `two_chain_market` scenario and the suite deployment behind it, on both devnets."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine
from web3 import Web3

from chain_adapters.base import ContractCall
from chain_adapters.evm.store import chain_metadata
from chain_adapters.suite import SUITE, SuiteRoles, deploy_suite, role_id, suite_grants
from hardhat_fixtures.scenarios import POOLS, RAY, devnet_adapter


@pytest.fixture
def market(load_fixture):
    return load_fixture("two_chain_market")


def test_same_suite_and_token_addresses_on_both_chains(market, chains) -> None:
    a, b = (market.chains[d.chain_id] for d in chains)
    assert a.chain_id != b.chain_id
    for label in (*SUITE, "USDC", "WETH", "USDC/USD", "ETH/USD"):
        assert a.contracts[label] == b.contracts[label], label
        for devnet in chains:
            assert Web3(Web3.HTTPProvider(devnet.rpc_url)).eth.get_code(a.contracts[label])
    assert a.contracts["PoolA"] != b.contracts["PoolB"]


def test_roles_held_as_designed_and_admin_is_the_timelock(market, chains, compiled) -> None:
    for devnet in chains:
        w3 = Web3(Web3.HTTPProvider(devnet.rpc_url))
        addresses = market.chains[devnet.chain_id].contracts
        for grant in suite_grants(
            SuiteRoles(market.governor.address, market.operator.address, market.guardian.address)
        ):
            contract = w3.eth.contract(
                address=addresses[grant.contract], abi=compiled.get(grant.contract).abi
            )
            account = addresses.get(grant.account, grant.account)
            assert contract.functions.hasRole(role_id(grant.role), account).call(), grant
        anchor = w3.eth.contract(
            address=addresses["ReceiptAnchor"], abi=compiled.get("ReceiptAnchor").abi
        )
        admin = role_id("DEFAULT_ADMIN_ROLE")
        assert anchor.functions.hasRole(admin, addresses["CredaggTimelock"]).call()
        assert not anchor.functions.hasRole(admin, market.governor.address).call()


def test_pools_have_their_own_rate_models_and_utilisation(market, chains, compiled) -> None:
    rates = {}
    for devnet in chains:
        chain = market.chains[devnet.chain_id]
        params = POOLS[devnet.chain_id]
        w3 = Web3(Web3.HTTPProvider(devnet.rpc_url))
        pool = w3.eth.contract(
            address=chain.contracts[params.label], abi=compiled.get("MockLendingPool").abi
        )
        assert pool.functions.utilization().call() == params.borrowed * RAY // params.liquidity
        rates[devnet.chain_id] = pool.functions.borrowRate().call()
        assert pool.functions.borrowRateAfter(10**6).call() >= rates[devnet.chain_id]
    assert len(set(rates.values())) == 2


def test_redeploying_the_suite_sends_no_transaction(
    market, chains, compiled, tmp_path: Path
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'n.db'}")
    chain_metadata.create_all(engine)
    roles = SuiteRoles(market.governor.address, market.operator.address, market.guardian.address)
    for devnet in chains:
        adapter = devnet_adapter(devnet, market.governor, engine)
        before = adapter.transaction_count(market.governor.address)
        again = deploy_suite(adapter, compiled, roles, manifest_dir=tmp_path)
        assert again.transactions_sent == 0
        assert again.roles.state == "nothing-to-do"
        assert adapter.transaction_count(market.governor.address) == before
        assert (tmp_path / "deployments" / f"{devnet.name}.json").exists()
        assert {n: c.address for n, c in again.contracts.items()} == {
            n: market.chains[devnet.chain_id].contracts[n] for n in SUITE
        }
    engine.dispose()


def test_collateral_configured_through_the_timelock(market, chains, compiled) -> None:
    devnet = chains[0]
    addresses = market.chains[devnet.chain_id].contracts
    adapter = devnet_adapter(devnet, market.governor, None)
    config = adapter.call(
        ContractCall(
            addresses["CollateralManager"],
            compiled.get("CollateralManager").abi,
            "assetConfig",
            (addresses["WETH"],),
        )
    )
    assert addresses["ETH/USD"] in config
    assert 8_000 in config
