"""Which contracts to watch on a chain: the suite's addresses from its deployment manifest."""

from __future__ import annotations

from backend.chains import chain_registry, deployments_dir
from backend.config import Settings
from backend.watcher.ingest import ChainWatcher
from backend.watcher.projections import default_registry
from chain_adapters.deploy import load_manifest
from chain_adapters.evm.adapter import EvmAdapter
from chain_adapters.registry import ChainConfig
from chain_adapters.suite import (
    COLLATERAL_MANAGER,
    CREDIT_AGGREGATOR,
    RECEIPT_ANCHOR,
    SCORING_ORACLE,
)

WATCHED = (CREDIT_AGGREGATOR, COLLATERAL_MANAGER, SCORING_ORACLE, RECEIPT_ANCHOR)


def watched_addresses(settings: Settings, chain: ChainConfig) -> list[str]:
    contracts = load_manifest(deployments_dir(settings), chain.name).get("contracts", {})
    return [str(contracts[name]["address"]) for name in WATCHED if name in contracts]


def watchers(settings: Settings) -> list[ChainWatcher]:
    """One watcher per configured chain that has the suite deployed."""
    registry = default_registry(settings.risk_alert_thresholds)
    found: list[ChainWatcher] = []
    for chain in chain_registry(settings):
        addresses = watched_addresses(settings, chain)
        if addresses:
            found.append(ChainWatcher(EvmAdapter(chain), addresses, registry))
    return found
