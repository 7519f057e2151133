"""Named scenarios deployed on the devnets, restored by snapshot (see loader.py).

`two_chain_market`: on both devnets, the whole credagg suite (timelock-administered, roles
granted), two mock tokens with price feeds, collateral configured, and one kinked-rate lending
pool per chain with different parameters and some utilisation, so the rates the backend reads
differ between the chains. Everything is deployed with CREATE2, so the suite, tokens and feeds
have the same addresses on both chains.

A scenario gets an `env` with `devnets`, `accounts` (Anvil's funded keys) and `compiled`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import create_engine

from chain_adapters.base import ContractCall
from chain_adapters.deploy import DeployedContract, deploy_contract
from chain_adapters.devnet import Devnet
from chain_adapters.evm.adapter import EvmAdapter
from chain_adapters.evm.store import chain_metadata
from chain_adapters.registry import ChainConfig
from chain_adapters.suite import (
    COLLATERAL_MANAGER,
    AdminCall,
    SuiteRoles,
    deploy_suite,
    run_admin_calls,
)
from hardhat_fixtures.loader import scenario

RAY = 10**27
USD_FEED_DECIMALS = 8


@dataclass(frozen=True)
class PoolParams:
    """Aave-v3-style kinked model, every figure a ray (1e27 = 100 %)."""

    label: str
    base_rate: int
    slope1: int
    slope2: int
    optimal_utilization: int
    liquidity: int  # USDC units supplied
    borrowed: int  # USDC units borrowed at set-up (gives the pool a utilisation)


POOLS = {
    31337: PoolParams(
        "PoolA",
        0,
        4 * RAY // 100,
        60 * RAY // 100,
        80 * RAY // 100,
        1_000_000 * 10**6,
        400_000 * 10**6,
    ),
    31338: PoolParams(
        "PoolB",
        1 * RAY // 100,
        7 * RAY // 100,
        300 * RAY // 100,
        45 * RAY // 100,
        2_000_000 * 10**6,
        500_000 * 10**6,
    ),
}


@dataclass
class MarketChain:
    chain_id: int
    rpc_url: str
    contracts: dict[str, str] = field(default_factory=dict)  # label -> address
    pool: PoolParams | None = None


@dataclass
class Market:
    """What tests and the demo need to find everything: addresses and who is who."""

    chains: dict[int, MarketChain]
    governor: LocalAccount
    operator: LocalAccount
    guardian: LocalAccount
    supplier: LocalAccount
    borrower: LocalAccount
    liquidator: LocalAccount

    def address(self, chain_id: int, label: str) -> str:
        return self.chains[chain_id].contracts[label]


def devnet_adapter(devnet: Devnet, signer: LocalAccount, engine: Any) -> EvmAdapter:
    return EvmAdapter(devnet.chain_config(), engine=engine, signer=signer)


@scenario("two_chain_market")
def two_chain_market(env: Any) -> Market:
    return deploy_two_chain_market(
        [devnet.chain_config() for devnet in env.devnets], env.accounts, env.compiled
    )


def deploy_two_chain_market(
    chains: Sequence[ChainConfig],
    accounts: Sequence[LocalAccount],
    compiled: Any,
    *,
    nonce_engine: Any = None,
    parallel: bool = False,
) -> Market:
    """`two_chain_market` on any devnets named by their chains-file entries.

    The scenario (tests) passes its session devnets; `credagg demo` passes the dev stack's
    chains file, whose suite the deployment then finds already in place (same CREATE2 plan),
    and the stack's database as `nonce_engine`, so the stack's own record of the deployer's
    nonces stays right. Without one, nonces live in a store that ends with the deployment.
    `parallel` deploys to the chains at once (each waits for its own blocks; on devnets mining
    every second that halves the wait).
    """
    market = Market(
        chains={},
        governor=accounts[0],
        operator=accounts[1],
        guardian=accounts[2],
        supplier=accounts[3],
        borrower=accounts[4],
        liquidator=accounts[5],
    )
    roles = SuiteRoles(
        governor=market.governor.address,
        operator=market.operator.address,
        guardian=market.guardian.address,
    )

    def deploy_all(engine: Any) -> Market:
        def deploy(chain: ChainConfig) -> MarketChain:
            adapter = EvmAdapter(chain, engine=engine, signer=market.governor)
            return _deploy_market(adapter, compiled, roles, market)

        with ThreadPoolExecutor(max_workers=len(chains) if parallel else 1) as pool:
            for chain, deployed in zip(chains, pool.map(deploy, chains), strict=True):
                market.chains[chain.chain_id] = deployed
        return market

    if nonce_engine is not None:
        return deploy_all(nonce_engine)
    # The nonce store lives only as long as the deployment: snapshots rewind the chain, and a
    # persisted nonce would then be ahead of it.
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'scenario.db'}")
        chain_metadata.create_all(engine)
        try:
            return deploy_all(engine)
        finally:
            engine.dispose()


def _deploy_market(
    governor: EvmAdapter, compiled: Any, roles: SuiteRoles, market: Market
) -> MarketChain:
    chain = MarketChain(chain_id=governor.chain_id, rpc_url=governor.chain.rpc_urls[0])
    suite = deploy_suite(governor, compiled, roles)
    chain.contracts.update({name: c.address for name, c in suite.contracts.items()})

    def deploy(label: str, name: str, *args: Any) -> DeployedContract:
        deployed = deploy_contract(governor, compiled.get(name), args, label)
        chain.contracts[label] = deployed.address
        return deployed

    usdc = deploy("USDC", "MockERC20", "USD Coin (mock)", "USDC", 6)
    weth = deploy("WETH", "MockERC20", "Wrapped Ether (mock)", "WETH", 18)
    deploy("USDC/USD", "MockPriceFeed", "USDC / USD", 1 * 10**USD_FEED_DECIMALS)
    deploy("ETH/USD", "MockPriceFeed", "ETH / USD", 2_000 * 10**USD_FEED_DECIMALS)
    params = POOLS[governor.chain_id]
    pool = deploy(
        params.label,
        "MockLendingPool",
        usdc.address,
        params.base_rate,
        params.slope1,
        params.slope2,
        params.optimal_utilization,
    )
    chain.pool = params

    run_admin_calls(
        governor,
        compiled,
        {**suite.contracts, "USDC": usdc, "WETH": weth},
        [
            AdminCall(
                COLLATERAL_MANAGER,
                "setAssetConfig",
                (weth.address, chain.contracts["ETH/USD"], 8_000, 500, 3_600),
            ),
            AdminCall(
                COLLATERAL_MANAGER,
                "setAssetConfig",
                (usdc.address, chain.contracts["USDC/USD"], 0, 0, 86_400),
            ),
        ],
        label="market-assets",
        fast_forward=True,
    )

    token_abi = compiled.get("MockERC20").abi
    pool_abi = compiled.get("MockLendingPool").abi

    def send(account: LocalAccount, address: str, abi: Any, fn: str, *args: Any) -> None:
        governor.with_signer(account).send(ContractCall(address, abi, fn, args), wait="mined")

    send(
        market.supplier, usdc.address, token_abi, "mint", market.supplier.address, params.liquidity
    )
    send(market.supplier, usdc.address, token_abi, "approve", pool.address, params.liquidity)
    send(market.supplier, pool.address, pool_abi, "supply", params.liquidity)
    send(market.supplier, pool.address, pool_abi, "borrow", params.borrowed)
    send(market.borrower, weth.address, token_abi, "mint", market.borrower.address, 100 * 10**18)
    send(
        market.liquidator,
        usdc.address,
        token_abi,
        "mint",
        market.liquidator.address,
        1_000_000 * 10**6,
    )
    return chain
