"""`credagg` commands, run through typer's runner against the session devnets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner
from web3 import Web3

from backend.chains import devnet_account
from backend.cli import app
from backend.config import get_settings
from chain_adapters.registry import ChainConfig, dump_chains

runner = CliRunner()


@pytest.fixture
def cli_env(tmp_path: Path, chains, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    chains_file = tmp_path / "chains.toml"
    chains_file.write_text(dump_chains(d.chain_config() for d in chains))
    monkeypatch.setenv("CREDAGG_CHAINS_FILE", str(chains_file))
    monkeypatch.setenv("CREDAGG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)  # nonce store on a SQLite file of its own
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_compile_prints_every_contract_with_its_size() -> None:
    result = runner.invoke(app, ["contracts", "compile"])
    assert result.exit_code == 0, result.output
    for name in ("ReceiptAnchor", "CreditAggregator", "CollateralManager", "CreditScoringOracle"):
        assert name in result.output


def test_deploy_all_then_again_is_a_no_op(cli_env: Path, chains) -> None:
    first = runner.invoke(app, ["contracts", "deploy", "--all"], terminal_width=200)
    assert first.exit_code == 0, first.output
    assert first.output.count("│ deployed") == 10  # five contracts on each of two chains
    assert "roles: executed" in first.output
    deployer = devnet_account(0).address
    nonces = [Web3(Web3.HTTPProvider(d.rpc_url)).eth.get_transaction_count(deployer)
              for d in chains]

    second = runner.invoke(app, ["contracts", "deploy", "--chain", chains[0].name,
                                 "--chain", chains[1].name], terminal_width=200)
    assert second.exit_code == 0, second.output
    assert second.output.count("present, code verified") == 10
    assert "roles: nothing-to-do" in second.output
    assert nonces == [Web3(Web3.HTTPProvider(d.rpc_url)).eth.get_transaction_count(deployer)
                      for d in chains]
    manifests = cli_env / "data" / "deployments"
    assert sorted(p.name for p in manifests.glob("*.json")) == ["devnet-a.json", "devnet-b.json"]


def test_deploy_needs_a_target(cli_env: Path) -> None:
    result = runner.invoke(app, ["contracts", "deploy"])
    assert result.exit_code == 2
    assert "--chain NAME" in result.output


def test_deploy_to_unknown_chain_names_the_known_ones(cli_env: Path) -> None:
    result = runner.invoke(app, ["contracts", "deploy", "--chain", "sepolia"], terminal_width=200)
    assert result.exit_code == 1
    assert "unknown chain 'sepolia'" in result.output and "devnet-a" in result.output


def test_deploy_to_a_real_chain_without_keys_is_refused(
    cli_env: Path, chains, monkeypatch: pytest.MonkeyPatch
) -> None:
    chains_file = cli_env / "prod.toml"
    prod = ChainConfig(name="prodlike", chain_id=chains[0].chain_id,
                       rpc_urls=(chains[0].rpc_url,))
    chains_file.write_text(dump_chains([prod]))
    monkeypatch.setenv("CREDAGG_CHAINS_FILE", str(chains_file))
    get_settings.cache_clear()
    result = runner.invoke(app, ["contracts", "deploy", "--all"], terminal_width=200)
    assert result.exit_code == 1
    assert "CREDAGG_DEPLOYER_KEY is not set" in result.output
