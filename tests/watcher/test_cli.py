"""`credagg watcher backfill` and `rebuild` through typer's runner, on devnet A."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backend.cli import app
from backend.config import Settings, get_settings
from backend.db import SessionFactory
from backend.watcher.anchors import latest_anchored_size
from chain_adapters.deploy import manifest_path
from chain_adapters.devnet import Devnet
from chain_adapters.registry import dump_chains
from tests.watcher.conftest import Anchors

runner = CliRunner()


@pytest.fixture
def cli_env(
    watcher_settings: Settings,
    anchors: Anchors,
    chains: list[Devnet],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Devnet]:
    devnet = chains[0]
    data_dir = tmp_path / "cli-data"
    path = manifest_path(data_dir, devnet.name)
    path.parent.mkdir(parents=True)
    contract = {"address": anchors.address}
    path.write_text(json.dumps({"contracts": {"ReceiptAnchor": contract}}), encoding="utf-8")
    chains_file = tmp_path / "chains.toml"
    chains_file.write_text(dump_chains([devnet.chain_config(confirmations=2)]), encoding="utf-8")
    monkeypatch.setenv("CREDAGG_CHAINS_FILE", str(chains_file))
    monkeypatch.setenv("CREDAGG_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DATABASE_URL", watcher_settings.effective_database_url)
    get_settings.cache_clear()
    yield devnet
    get_settings.cache_clear()


def test_backfill_then_rebuild(cli_env: Devnet, anchors: Anchors, factory: SessionFactory) -> None:
    anchors.send(4)
    anchors.mine(2)
    result = runner.invoke(
        app, ["watcher", "backfill", "--chain", cli_env.name, "--from", "0"], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    assert "cursor at" in result.output
    with factory() as session:
        assert latest_anchored_size(session, cli_env.chain_id, final=True) == 4
    rebuilt = runner.invoke(app, ["watcher", "rebuild", "--chain", cli_env.name])
    assert rebuilt.exit_code == 0, rebuilt.output
    with factory() as session:
        assert latest_anchored_size(session, cli_env.chain_id, final=True) == 4


def test_unknown_chain_is_one_line_that_says_what_to_do(cli_env: Devnet) -> None:
    result = runner.invoke(app, ["watcher", "rebuild", "--chain", "nope"])
    assert result.exit_code == 1
    assert "unknown chain 'nope'" in result.output
    missing = runner.invoke(app, ["watcher", "backfill", "--chain", "nope", "--from", "0"])
    assert missing.exit_code == 1
    assert "credagg contracts deploy" in missing.output
