"""Prometheus metrics of the watcher, read from the cursors at scrape time.

Ingestion runs in Celery workers, the metrics endpoint in the API: counters incremented in a
worker would be invisible to the API (and reset by every crash). The cursors table is the one
place both see, so a collector on the app's registry (see backend.observability.metrics) turns
it into samples when Prometheus scrapes: `rate(credagg_watcher_logs_ingested_total[1m])` is
logs/s, `credagg_watcher_lag_blocks` the lag, `credagg_watcher_reorgs_total` the reorgs.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from backend.db import SessionFactory
from backend.watcher.repository import WatcherRepository


class WatcherCollector(Collector):
    def __init__(self, factory: SessionFactory) -> None:
        self.factory = factory

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        lag = GaugeMetricFamily(
            "credagg_watcher_lag_blocks", "Chain head minus watcher cursor.", labels=["chain_id"]
        )
        cursor = GaugeMetricFamily(
            "credagg_watcher_cursor_block", "Last ingested block.", labels=["chain_id"]
        )
        reorgs = CounterMetricFamily(
            "credagg_watcher_reorgs", "Reorgs handled.", labels=["chain_id"]
        )
        depth = GaugeMetricFamily(
            "credagg_watcher_last_reorg_depth", "Depth of the last reorg.", labels=["chain_id"]
        )
        logs = CounterMetricFamily(
            "credagg_watcher_logs_ingested", "Logs stored by ingestion.", labels=["chain_id"]
        )
        try:
            with self.factory() as session:
                cursors = WatcherRepository(session).all_cursors()
        except SQLAlchemyError:  # a scrape must not fail because the database is away
            cursors = []
        for c in cursors:
            label = [str(c.chain_id)]
            cursor.add_metric(label, c.block_number)
            if c.head is not None:
                lag.add_metric(label, max(c.head - c.block_number, 0))
            reorgs.add_metric(label, c.reorg_count)
            depth.add_metric(label, c.last_reorg_depth or 0)
            logs.add_metric(label, c.logs_ingested)
        yield from (lag, cursor, reorgs, depth, logs)
