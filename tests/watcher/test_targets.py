"""The watch list in production: the suite from its manifest plus the CollateralManager's feeds,
read from the chain, so a price move reaches the risk projection through `watchers(settings)`."""

from __future__ import annotations

import json
import tempfile
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from web3 import Web3

from backend.config import Settings
from backend.db import SessionFactory
from backend.risk.models import RiskAlert, RiskAssetConfigEffect, RiskPriceEffect
from backend.risk.repository import RiskRepository
from backend.risk.service import loans
from backend.watcher.backfill import backfill
from backend.watcher.ingest import ChainWatcher
from backend.watcher.models import WatcherCursor, WatcherLog, WatcherTarget
from backend.watcher.projections import default_registry
from backend.watcher.rebuild import rebuild
from backend.watcher.targets import FeedDirectory, suite_addresses, watched_addresses, watchers
from chain_adapters.deploy import manifest_path
from chain_adapters.devnet import Devnet
from chain_adapters.evm.adapter import EvmAdapter
from chain_adapters.evm.store import chain_metadata
from chain_adapters.registry import dump_chains
from chain_adapters.suite import (
    COLLATERAL_MANAGER,
    CREDIT_AGGREGATOR,
    RECEIPT_ANCHOR,
    SCORING_ORACLE,
    TIMELOCK,
    AdminCall,
    run_admin_calls,
)
from tests.risk.conftest import Lending
from tests.watcher.conftest import assert_consistent

SUITE_LABELS = (CREDIT_AGGREGATOR, COLLATERAL_MANAGER, SCORING_ORACLE, RECEIPT_ANCHOR)


def production_settings(
    settings: Settings, devnet: Devnet, market: Any, tmp_path: Path
) -> Settings:
    """A chains file with devnet A and its manifest naming only the suite (no feeds)."""
    data_dir = tmp_path / "data"
    path = manifest_path(data_dir, devnet.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    contracts = {
        label: {"address": market.address(devnet.chain_id, label)} for label in SUITE_LABELS
    }
    path.write_text(
        json.dumps({"chain_id": devnet.chain_id, "contracts": contracts}), encoding="utf-8"
    )
    chains_toml = tmp_path / "chains.toml"
    chains_toml.write_text(dump_chains([devnet.chain_config(confirmations=3)]), encoding="utf-8")
    return settings.model_copy(update={"data_dir": data_dir, "chains_file": chains_toml})


def deploy_feed(devnet: Devnet, market: Any, compiled: Any, description: str, answer: int) -> str:
    """A new MockPriceFeed (its constructor emits the first AnswerUpdated)."""
    w3 = Web3(Web3.HTTPProvider(devnet.rpc_url))
    artifact = compiled.get("MockPriceFeed")
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        .constructor(description, answer)
        .transact({"from": market.governor.address})
    )
    return str(receipt["contractAddress"])


def configure_asset(
    devnet: Devnet, market: Any, compiled: Any, asset: str, feed: str, *params: int
) -> None:
    """`setAssetConfig(asset, feed, *params)` through the timelock, as governance does."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'nonces.db'}")
        chain_metadata.create_all(engine)
        try:
            governor = EvmAdapter(devnet.chain_config(), engine=engine, signer=market.governor)
            deployed = {
                name: SimpleNamespace(address=market.address(devnet.chain_id, name))
                for name in (TIMELOCK, COLLATERAL_MANAGER)
            }
            run_admin_calls(
                governor,
                compiled,
                deployed,  # type: ignore[arg-type]  # only `.address` is read
                [
                    AdminCall(
                        COLLATERAL_MANAGER,
                        "setAssetConfig",
                        (market.address(devnet.chain_id, asset), feed, *params),
                    )
                ],
                label=f"test-config-{feed.lower()}",
                fast_forward=True,
            )
        finally:
            engine.dispose()


@pytest.fixture
def lending(market: Any, chains: list[Devnet], compiled: Any, accounts: list[Any]) -> Lending:
    devnet = chains[0]
    return Lending(
        w3=Web3(Web3.HTTPProvider(devnet.rpc_url)),
        chain_id=devnet.chain_id,
        market=market,
        compiled=compiled,
        provider=accounts[6].address,
    )


def test_watched_addresses_include_the_configured_price_feeds(
    watcher_settings: Settings, market: Any, chains: list[Devnet], tmp_path: Path
) -> None:
    devnet = chains[0]
    settings = production_settings(watcher_settings, devnet, market, tmp_path)
    chain = devnet.chain_config(confirmations=3)
    feeds = [market.address(devnet.chain_id, label).lower() for label in ("ETH/USD", "USDC/USD")]
    suite = {a.lower() for a in suite_addresses(settings, chain)}
    assert not suite & set(feeds)  # the manifest does not name them: they come from the chain
    watched = watched_addresses(settings, chain, feeds=FeedDirectory())
    assert set(watched) == suite | set(feeds)


def test_a_feed_configured_later_is_picked_up_on_the_next_tick(
    watcher_settings: Settings,
    market: Any,
    chains: list[Devnet],
    compiled: Any,
    tmp_path: Path,
) -> None:
    devnet = chains[0]
    settings = production_settings(watcher_settings, devnet, market, tmp_path)
    chain = devnet.chain_config(confirmations=3)
    directory = FeedDirectory()
    before = watched_addresses(settings, chain, feeds=directory)

    new_feed = deploy_feed(devnet, market, compiled, "USDC / USD (new)", 10**8)
    assert new_feed.lower() not in before
    configure_asset(devnet, market, compiled, "USDC", new_feed, 0, 0, 86_400)
    after = watched_addresses(settings, chain, feeds=directory)
    assert set(after) == set(before) | {new_feed.lower()}


def test_a_price_move_reaches_the_risk_projection_through_watchers(
    watcher_settings: Settings,
    factory: SessionFactory,
    market: Any,
    chains: list[Devnet],
    lending: Lending,
    tmp_path: Path,
) -> None:
    devnet = chains[0]
    settings = production_settings(watcher_settings, devnet, market, tmp_path)
    # 1 WETH at $2,000 x 80 % against $1,000: health 1.6.
    loan = lending.open_loan(1_000 * 10**6, 10**18)
    directory = FeedDirectory()
    (watcher,) = watchers(settings, feeds=directory)
    assert market.address(devnet.chain_id, "ETH/USD").lower() in watcher.addresses
    backfill(factory, watcher, from_block=0, until_head=True)

    def health() -> Decimal | None:
        with factory() as session:
            (view,) = [v for v in loans(session, watcher.chain_id) if v.loan.loan_id == loan]
            return view.health_factor

    assert health() == Decimal("1.6")
    lending.set_eth_price(1_800)  # 1 x 1,800 x 0.8 / 1,000 = 1.44: crosses the 1.5 threshold
    (watcher,) = watchers(settings, feeds=directory)  # the next tick's watcher
    backfill(factory, watcher, from_block=0, until_head=True)
    assert health() == Decimal("1.44")
    with factory() as session:
        alerts = [(a.loan_id, a.threshold) for a in RiskRepository(session).alerts(devnet.chain_id)]
    assert alerts == [(str(loan), "1.5")]


def test_a_feed_noticed_late_has_its_history_backfilled_before_live_ingestion(
    watcher_settings: Settings,
    factory: SessionFactory,
    market: Any,
    chains: list[Devnet],
    compiled: Any,
    lending: Lending,
    tmp_path: Path,
) -> None:
    """WETH is re-pointed at a feed whose price was set before, and moved after, the
    configuration, and a tick that raced the configuration ingested all of it without the feed:
    the next tick must store the feed's logs of the blocks already ingested (no gap), once (no
    duplicate), and price the loan with them; incremental state stays equal to a rebuild."""
    devnet = chains[0]
    settings = production_settings(watcher_settings, devnet, market, tmp_path)
    loan = lending.open_loan(1_000 * 10**6, 10**18)  # 1 WETH at $2,000 x 80 % / $1,000: 1.6
    directory = FeedDirectory()
    (watcher,) = watchers(settings, feeds=directory)
    backfill(factory, watcher, from_block=0, until_head=True)
    old_list = watcher.addresses

    feed = deploy_feed(devnet, market, compiled, "ETH / USD (new)", 1_900 * 10**8)
    configure_asset(devnet, market, compiled, "WETH", feed, 8_000, 500, 3_600)
    new_feed = lending.contract("ETH/USD", "MockPriceFeed")  # the ABI; at the new address
    lending._send(
        lending.w3.eth.contract(
            address=Web3.to_checksum_address(feed), abi=new_feed.abi
        ).functions.setAnswer(1_700 * 10**8),
        market.operator.address,
    )
    lending.mine(4)
    # The tick that read its watch list just before the configuration: it ingests every block
    # above without the new feed.
    raced = ChainWatcher(watcher.adapter, old_list, default_registry())
    backfill(factory, raced, from_block=0, until_head=True)
    with factory() as session:
        cursor = session.get(WatcherCursor, watcher.chain_id)
        assert cursor is not None
        assert (
            session.scalar(
                select(func.count()).select_from(WatcherLog).where(WatcherLog.address.ilike(feed))
            )
            == 0
        )
        passed = cursor.block_number

    (watcher,) = watchers(settings, feeds=directory)  # the next tick: the feed is on the list
    assert feed.lower() in watcher.addresses
    results = backfill(factory, watcher, from_block=0, until_head=True)
    assert results[0].extra.get("history_logs") == 2  # constructor + setAnswer, both <= passed

    with factory() as session:
        (view,) = [v for v in loans(session, watcher.chain_id) if v.loan.loan_id == loan]
        target = session.get(WatcherTarget, (watcher.chain_id, feed.lower()))
        assert target is not None and target.since_block == passed
    assert view.health_factor == Decimal("1.36")  # 1 x 1,700 x 0.8 / 1,000
    assert_consistent(factory, watcher)  # every watched log once, effects == a rebuild
    with factory() as session:
        risk_before = risk_effects(session, watcher.chain_id)
    lending.set_eth_price(2_500)  # the old feed: no longer prices WETH
    lending._send(
        lending.w3.eth.contract(
            address=Web3.to_checksum_address(feed), abi=new_feed.abi
        ).functions.setAnswer(1_600 * 10**8),
        market.operator.address,
    )
    backfill(factory, watcher, from_block=0, until_head=True)  # live, no more history
    with factory() as session:
        (view,) = [v for v in loans(session, watcher.chain_id) if v.loan.loan_id == loan]
        assert len(risk_effects(session, watcher.chain_id)[1]) == len(risk_before[1]) + 2
    assert view.health_factor == Decimal("1.28")
    assert_consistent(factory, watcher)
    with factory() as session, session.begin():
        incremental = risk_effects(session, watcher.chain_id)
        rebuild(session, watcher.chain_id, default_registry())
    with factory() as session:
        assert risk_effects(session, watcher.chain_id) == incremental


def set_price(lending: Lending, feed: str, usd: int) -> None:
    contract = lending.w3.eth.contract(
        address=Web3.to_checksum_address(feed), abi=lending.compiled.get("MockPriceFeed").abi
    )
    lending._send(contract.functions.setAnswer(usd * 10**8), lending.market.operator.address)


def risk_effects(session: Session, chain_id: int) -> tuple[list[Any], list[Any], list[Any]]:
    """Alerts, prices and asset configurations, in chain order (what health depends on)."""

    def rows(model: Any, *columns: Any) -> list[Any]:
        return [
            tuple(r)
            for r in session.execute(
                select(model.block_hash, model.log_index, *columns)
                .where(model.chain_id == chain_id)
                .order_by(model.block_number, model.log_index, *columns)
            )
        ]

    return (
        rows(RiskAlert, RiskAlert.loan_id, RiskAlert.threshold, RiskAlert.health_factor),
        rows(RiskPriceEffect, RiskPriceEffect.feed, RiskPriceEffect.answer),
        rows(RiskAssetConfigEffect, RiskAssetConfigEffect.asset, RiskAssetConfigEffect.feed),
    )
