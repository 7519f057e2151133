"""The backend's view of its chains: the registry from settings, who signs, the deployed suite.

Keys come from settings only. On a devnet (`devnet = true` in the chains file) a missing key
falls back to Anvil's well-known accounts, which is what makes `scripts/dev` need no setup; on
any other chain a missing key is an error that names the variable to set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine

from backend.config import Settings
from chain_adapters.compiler import CompiledProject, compile_project
from chain_adapters.devnet import DEVNET_MNEMONIC
from chain_adapters.evm.adapter import EvmAdapter
from chain_adapters.exceptions import ChainConfigError
from chain_adapters.registry import ChainConfig, ChainRegistry, load_chains
from chain_adapters.suite import SuiteDeployment, SuiteRoles, deploy_suite

Account.enable_unaudited_hdwallet_features()


def devnet_account(index: int) -> LocalAccount:
    return Account.from_mnemonic(DEVNET_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


@dataclass(frozen=True)
class Identities:
    deployer: LocalAccount
    operator: LocalAccount
    roles: SuiteRoles


def chain_registry(settings: Settings) -> ChainRegistry:
    if settings.chains_file is None:
        raise ChainConfigError(
            "no chains file: set CREDAGG_CHAINS_FILE (scripts/dev writes .credagg/chains.toml)"
        )
    return load_chains(settings.chains_file)


def identities(settings: Settings, chain: ChainConfig) -> Identities:
    def key(value: object, index: int, variable: str) -> LocalAccount:
        secret = getattr(value, "get_secret_value", None)
        if secret is not None:
            return Account.from_key(secret())
        if chain.devnet:
            return devnet_account(index)
        raise ChainConfigError(
            f"{variable} is not set and {chain.name} is not a devnet; "
            "set it to the hex private key",
            chain=chain.name,
        )

    deployer = key(settings.deployer_key, 0, "CREDAGG_DEPLOYER_KEY")
    operator = key(settings.operator_key, 1, "CREDAGG_OPERATOR_KEY")
    governor = settings.governor_address or deployer.address
    guardian = settings.guardian_address or (
        devnet_account(2).address if chain.devnet else governor
    )
    return Identities(deployer, operator, SuiteRoles(governor, operator.address, guardian))


def deployments_dir(settings: Settings) -> Path:
    """Manifests live in `<data_dir>/deployments/<chain>.json`."""
    return settings.data_dir


def deploy_to(
    settings: Settings,
    chain: ChainConfig,
    engine: Engine,
    *,
    compiled: CompiledProject | None = None,
) -> SuiteDeployment:
    """Deploy (or confirm) the suite on one chain and hand out its roles; idempotent."""
    ids = identities(settings, chain)
    adapter = EvmAdapter(chain, engine=engine, signer=ids.deployer)
    adapter.connect()
    governs = ids.roles.governor.lower() == ids.deployer.address.lower()
    return deploy_suite(
        adapter,
        compiled or compile_project(),
        ids.roles,
        manifest_dir=deployments_dir(settings),
        apply_roles=governs,
        # A devnet has no reorgs unless a test asks for one: mined is final enough, and waiting
        # for confirmations would make `scripts/dev` wait seconds per contract.
        wait="mined" if chain.devnet else "final",
    )
