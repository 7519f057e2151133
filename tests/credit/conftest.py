"""The credit pipeline over HTTP, for real: the app on its own migrated database, the two-chain
devnet market (two DeFi pools), and lenders running as separate processes
(`scripts/example_lender.py`).

The credit tests get a database of their own (fresh and migrated once per module), and each
test suspends the providers earlier tests made, because the pipeline fans out to every active
provider and one test's lenders must not answer (or fail to answer) another test's requests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from backend.config import Settings
from backend.credit.repository import CreditRepository
from backend.db import create_db_engine, create_session_factory, migrate, session_scope
from backend.kit.throwaway_db import fresh_postgres_database, is_postgres
from backend.providers.models import Provider, ProviderStatus
from chain_adapters.deploy import DeployedContract, record_deployment
from chain_adapters.devnet import Devnet
from chain_adapters.registry import dump_chains
from tests.backend.conftest import (  # noqa: F401 - fixtures re-exported for these tests
    _no_credagg_env,
    app,
    client,
    db_session,
    make_settings,
    observer,
    settings,
)

ROOT = Path(__file__).resolve().parents[2]
LENDER = ROOT / "scripts" / "example_lender.py"


@pytest.fixture(scope="module")
def backend_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = os.environ.get("DATABASE_URL")
    if is_postgres(base):
        assert base is not None
        with fresh_postgres_database(base) as url:
            migrate(Settings(_env_file=None, environment="test", database_url=url))
            yield url
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('credit-db') / 'credagg.db'}"
        migrate(Settings(_env_file=None, environment="test", database_url=url))
        yield url


def run_in_session(config: Settings, fn: Callable[[Any], Any]) -> Any:
    engine = create_db_engine(config)
    try:
        with session_scope(create_session_factory(engine)) as session:
            return fn(session)
    finally:
        engine.dispose()


@pytest.fixture(autouse=True)
def _only_this_tests_providers(backend_database_url: str) -> None:
    config = Settings(_env_file=None, environment="test", database_url=backend_database_url)
    run_in_session(
        config,
        lambda s: s.execute(update(Provider).values(status=ProviderStatus.SUSPENDED.value)),
    )


@dataclass
class MarketFiles:
    chains_file: Path
    assets_file: Path
    sanctions_file: Path
    data_dir: Path


@pytest.fixture
def market(load_fixture: Any) -> Any:
    return load_fixture("two_chain_market")


@pytest.fixture
def market_files(tmp_path: Path, market: Any, chains: list[Devnet]) -> MarketFiles:
    """Chains file, CreditAggregator manifests, asset registry and an empty sanctions list."""
    data_dir = tmp_path / "data"
    chains_file = tmp_path / "chains.toml"
    configs = [d.chain_config() for d in chains]
    chains_file.write_text(dump_chains(configs))
    assets: list[dict[str, Any]] = []
    feeds: dict[str, str] = {}
    for config in configs:
        addr = market.chains[config.chain_id].contracts
        record_deployment(
            data_dir,
            config.name,
            DeployedContract(
                label="CreditAggregator",
                contract="CreditAggregator",
                chain_id=config.chain_id,
                address=addr["CreditAggregator"],
                salt="0x" + "00" * 32,
                init_code_hash="0x" + "00" * 32,
                runtime_code_hash="0x" + "00" * 32,
                tx_hash=None,
                block_number=None,
                created=False,
            ),
        )
        assets.append(
            {
                "symbol": "USDC",
                "chain_id": config.chain_id,
                "address": addr["USDC"],
                "decimals": 6,
                "price_feed": addr["USDC/USD"],
            }
        )
        assets.append(
            {
                "symbol": "WETH",
                "chain_id": config.chain_id,
                "address": addr["WETH"],
                "decimals": 18,
                "price_feed": addr["ETH/USD"],
                "liquidation_threshold": "0.80",
            }
        )
        feeds[str(config.chain_id)] = addr["ETH/USD"]
    assets_file = tmp_path / "assets.json"
    assets_file.write_text(json.dumps({"assets": assets, "native_price_feeds": feeds}))
    sanctions_file = tmp_path / "sanctions.txt"
    sanctions_file.write_text("# OFAC-style deny-list used by the tests\n")
    return MarketFiles(chains_file, assets_file, sanctions_file, data_dir)


@pytest.fixture
def credit_settings(
    make_settings: Callable[..., Settings],  # noqa: F811 - the fixture re-exported above
    market_files: MarketFiles,
) -> Settings:
    return make_settings(
        data_dir=market_files.data_dir,
        chains_file=market_files.chains_file,
        credit_assets_file=market_files.assets_file,
        credit_sanctions_file=market_files.sanctions_file,
        credit_provider_timeout=2.0,
        credit_fanout_deadline=3.0,
        credit_breaker_failures=2,
        credit_breaker_cooldown_seconds=1.0,
    )


def register_pool(config: Settings, provider_id: int, chain_id: int, pool: str) -> None:
    run_in_session(
        config,
        lambda s: CreditRepository(s).set_defi_pool(provider_id, chain_id, pool.lower(), "USDC"),
    )


@dataclass
class LenderProcess:
    process: subprocess.Popen[str]
    port: int
    secret_file: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/quotes"

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=5) as answer:
            loaded: dict[str, int] = json.loads(answer.read())
            return loaded


@pytest.fixture
def start_lender(tmp_path: Path) -> Iterator[Callable[..., LenderProcess]]:
    """Start `scripts/example_lender.py` as a separate process; stopped (by pid) afterwards."""
    started: list[LenderProcess] = []

    def start(*args: str) -> LenderProcess:
        secret_file = tmp_path / f"lender-{len(started)}.secret"
        process = subprocess.Popen(
            [sys.executable, str(LENDER), "--port", "0", "--secret-file", str(secret_file), *args],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on "), line
        lender = LenderProcess(process, int(line.split()[-1]), secret_file)
        started.append(lender)
        return lender

    yield start
    for lender in started:
        lender.process.terminate()
        try:
            lender.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            lender.process.kill()
            lender.process.wait()
