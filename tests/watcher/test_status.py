"""`GET /v1/watcher/status` and the watcher's Prometheus samples, after real ingestion."""

from __future__ import annotations

from fastapi.testclient import TestClient

from backend.app import create_app
from backend.config import Settings
from backend.db import SessionFactory
from chain_adapters.devnet import Devnet
from tests.watcher.conftest import Anchors, make_watcher, run_to_head


def test_status_and_metrics_report_cursor_lag_and_reorgs(
    watcher_settings: Settings, factory: SessionFactory, anchors: Anchors, chains: list[Devnet]
) -> None:
    watcher = make_watcher(chains[0], anchors.address, confirmations=2)
    anchors.send(2)
    run_to_head(factory, watcher)
    anchors.rpc("anvil_reorg", [2, []])
    anchors.mine(1)
    run_to_head(factory, watcher)
    with TestClient(create_app(watcher_settings)) as client:
        response = client.get("/v1/watcher/status")
        assert response.status_code == 200, response.text
        (status,) = response.json()["chains"]
        assert status["chain_id"] == watcher.chain_id
        assert status["cursor"] == status["head"] == int(anchors.w3.eth.block_number)
        assert status["lag"] == 0
        assert status["last_reorg_depth"] == 2
        assert status["reorg_count"] == 1
        assert status["final_delivered"] == status["finalized"]
        metrics = client.get("/metrics").text
    chain = f'chain_id="{watcher.chain_id}"'
    assert f"credagg_watcher_lag_blocks{{{chain}}} 0.0" in metrics
    assert f"credagg_watcher_reorgs_total{{{chain}}} 1.0" in metrics
    assert f"credagg_watcher_logs_ingested_total{{{chain}}}" in metrics
