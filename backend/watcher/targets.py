"""Which contracts to watch on a chain: the suite's addresses from its deployment manifest, plus
the price feeds its CollateralManager is configured with (read from the chain).

The feeds are not in the manifest: governance points an asset at a feed with `setAssetConfig`,
which emits `AssetConfigured(asset, feed, ...)`. Without the feeds in the watch list, price
moves (`AnswerUpdated`) would never reach the risk projection outside tests. The feed set is
cached per (chain, manager) with the last block scanned, so each tick only asks the node for
`AssetConfigured` logs of the blocks it has not seen yet (one cheap `eth_getLogs`).

A feed seen in a block that is later reorganised away stays in the set: watching one more
address only stores that contract's logs (the risk projection ignores prices of feeds no asset
uses), whereas dropping a feed could lose price moves.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from backend.chains import chain_registry, deployments_dir
from backend.config import Settings
from backend.risk.events import ASSET_CONFIGURED
from backend.watcher.ingest import ChainWatcher
from backend.watcher.projections import ProjectionRegistry, default_registry
from chain_adapters.base import ChainAdapter
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

#: Blocks per `eth_getLogs` of the feed scan: public providers cap the range of one query.
FEED_SCAN_SPAN = 10_000


@dataclass
class _FeedScan:
    scanned_to: int
    feeds: frozenset[str] = field(default_factory=frozenset)


class FeedDirectory:
    """Price feeds configured in a CollateralManager, per chain, refreshed incrementally.

    Thread-safe (a Celery worker may run tasks in threads); holds addresses only, no clients.
    """

    def __init__(self, *, span: int = FEED_SCAN_SPAN) -> None:
        self.span = span
        self._scans: dict[tuple[int, str], _FeedScan] = {}
        self._lock = threading.Lock()

    def feeds(self, adapter: ChainAdapter, manager: str, *, from_block: int = 0) -> list[str]:
        """The feeds (lower-case) of every `AssetConfigured` of `manager` up to the head.

        `from_block` is where the manager was deployed (nothing to find before). Raises the
        adapter's RPCUnavailable if the node does not answer; the cache is then unchanged.
        """
        key = (adapter.chain_id, manager.lower())
        with self._lock:
            scan = self._scans.get(key) or _FeedScan(scanned_to=from_block - 1)
        head = adapter.head()
        found = set(scan.feeds)
        start = scan.scanned_to + 1
        while start <= head:
            end = min(head, start + self.span - 1)
            for log in adapter.get_logs(
                from_block=start, to_block=end, address=manager, topics=[ASSET_CONFIGURED.topic0]
            ):
                if not log.removed and len(log.topics) > 2:
                    found.add("0x" + log.topics[2][-40:].lower())
            start = end + 1
        with self._lock:
            current = self._scans.get(key)
            if current is None or current.scanned_to < head:
                self._scans[key] = _FeedScan(
                    scanned_to=max(head, scan.scanned_to), feeds=frozenset(found)
                )
            return sorted(self._scans[key].feeds)

    def forget(self) -> None:
        """Drop every cached scan (tests that rewind a devnet's history use this)."""
        with self._lock:
            self._scans.clear()


#: The process's directory: one scan per chain, shared by every tick of this worker.
FEEDS = FeedDirectory()


def suite_addresses(settings: Settings, chain: ChainConfig) -> list[str]:
    """The suite's contracts on `chain`, from its deployment manifest."""
    contracts = load_manifest(deployments_dir(settings), chain.name).get("contracts", {})
    return [str(contracts[name]["address"]) for name in WATCHED if name in contracts]


def watched_addresses(
    settings: Settings,
    chain: ChainConfig,
    *,
    adapter: ChainAdapter | None = None,
    feeds: FeedDirectory = FEEDS,
) -> list[str]:
    """The suite's contracts plus the price feeds of its CollateralManager (lower-case, sorted).

    Reads the chain only when a CollateralManager is deployed there.
    """
    contracts = load_manifest(deployments_dir(settings), chain.name).get("contracts", {})
    addresses = {a.lower() for a in suite_addresses(settings, chain)}
    manager = contracts.get(COLLATERAL_MANAGER)
    if manager is not None:
        node = adapter or EvmAdapter(chain)
        deployed_at = int(manager.get("block_number") or 0)
        addresses.update(feeds.feeds(node, str(manager["address"]), from_block=deployed_at))
    return sorted(addresses)


def watcher_for(
    settings: Settings,
    chain: ChainConfig,
    *,
    registry: ProjectionRegistry | None = None,
    feeds: FeedDirectory = FEEDS,
) -> ChainWatcher | None:
    """The watcher of one chain, or None if the suite is not deployed there."""
    adapter = EvmAdapter(chain)
    addresses = watched_addresses(settings, chain, adapter=adapter, feeds=feeds)
    if not addresses:
        return None
    return ChainWatcher(
        adapter, addresses, registry or default_registry(settings.risk_alert_thresholds)
    )


def watchers(settings: Settings, *, feeds: FeedDirectory = FEEDS) -> list[ChainWatcher]:
    """One watcher per configured chain that has the suite deployed."""
    registry = default_registry(settings.risk_alert_thresholds)
    found: list[ChainWatcher] = []
    for chain in chain_registry(settings):
        watcher = watcher_for(settings, chain, registry=registry, feeds=feeds)
        if watcher is not None:
            found.append(watcher)
    return found
