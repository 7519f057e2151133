"""RPC outage: the watcher's node stops answering for 30 s while the chain moves on.

Anvil cannot mine while it is stopped, so "the RPC is down while the chain moves on" is built
honestly: the watcher reads the chain only through a real local HTTP JSON-RPC proxy in front of
a private Anvil, and the proxy's listening socket is closed for 30 s (connections refused)
while the test keeps sending transactions straight to Anvil. The watcher runs the real
`watcher.ingest` body (`ingest_chain`) in a loop in a thread, from a chains file and a manifest.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient
from web3 import Web3

from backend.app import create_app
from backend.config import Settings
from backend.db import SessionFactory, session_scope
from backend.watcher.ingest import ChainWatcher, start_cursor
from backend.watcher.projections import default_registry
from backend.watcher.service import chain_health
from backend.watcher.tasks import ingest_chain
from chain_adapters.deploy import manifest_path
from chain_adapters.devnet import Devnet, DevnetSpec, free_port, start_devnet
from chain_adapters.evm.adapter import EvmAdapter
from chain_adapters.exceptions import RPCUnavailable
from chain_adapters.registry import ChainConfig, dump_chains, load_chains
from tests.backend.conftest import wait_for
from tests.watcher.conftest import ANCHOR_ABI, Anchors, assert_consistent, log_keys

OUTAGE_SECONDS = 30.0
CONFIRMATIONS = 2
ANCHORER_ROLE = Web3.keccak(text="ANCHORER_ROLE")


class RpcProxy:
    """A real HTTP JSON-RPC forwarder on a fixed port that can be switched off and on.

    Off means the listening socket is closed: clients get "connection refused", exactly what a
    crashed or restarting node looks like. On again binds the same port.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        upstream = self.upstream

        class Forward(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                payload = requests.post(
                    upstream, data=body, headers={"Content-Type": "application/json"}, timeout=30
                ).content
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Forward

    def up(self) -> None:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


@pytest.fixture
def private_devnet(tmp_path: Path) -> Iterator[Devnet]:
    """Our own Anvil (never the session devnets: nothing here may disturb other tests)."""
    devnet = start_devnet(DevnetSpec(name="outage", chain_id=31_951), log_dir=tmp_path)
    try:
        yield devnet
    finally:
        devnet.stop()


@pytest.fixture
def proxy(private_devnet: Devnet) -> Iterator[RpcProxy]:
    proxy = RpcProxy(private_devnet.rpc_url)
    proxy.up()
    try:
        yield proxy
    finally:
        proxy.down()


def deploy_anchor(w3: Web3, compiled: Any) -> Anchors:
    """A ReceiptAnchor on the private devnet; Anvil's account #0 is admin and anchorer."""
    admin = w3.eth.accounts[0]
    artifact = compiled.get("ReceiptAnchor")
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor(admin).transact({"from": admin})
    )
    address = str(receipt["contractAddress"])
    contract = w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact.abi)
    granted = contract.functions.grantRole(ANCHORER_ROLE, admin).transact({"from": admin})
    assert w3.eth.wait_for_transaction_receipt(granted)["status"] == 1
    return Anchors(w3=w3, address=address, operator=admin)


def outage_settings(
    settings: Settings, chain: ChainConfig, address: str, tmp_path: Path
) -> Settings:
    """A chains file naming the chain (through the proxy) and a manifest with its anchor."""
    data_dir = tmp_path / "data"
    path = manifest_path(data_dir, chain.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {"chain_id": chain.chain_id, "contracts": {"ReceiptAnchor": {"address": address}}}
        ),
        encoding="utf-8",
    )
    chains_toml = tmp_path / "chains.toml"
    chains_toml.write_text(dump_chains([chain]), encoding="utf-8")
    return settings.model_copy(update={"data_dir": data_dir, "chains_file": chains_toml})


class IngestLoop(threading.Thread):
    """The beat: `watcher.ingest`'s body for our chain, about every 200 ms, until stopped."""

    def __init__(self, settings: Settings, factory: SessionFactory, chain: ChainConfig) -> None:
        super().__init__(daemon=True)
        self.settings, self.factory, self.chain = settings, factory, chain
        self.outcomes: list[dict[str, Any]] = []
        self.stop_event = threading.Event()
        self.crash: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                outcome = ingest_chain(self.settings, self.factory, self.chain)
                assert outcome is not None
                self.outcomes.append(outcome)
                self.stop_event.wait(0.2)
        except BaseException as exc:  # surfaced by the test: the loop must never crash
            self.crash = exc

    def succeeded_since(self, index: int) -> list[dict[str, Any]]:
        return [o for o in self.outcomes[index:] if "cursor" in o]


class Producer(threading.Thread):
    """One anchor per transaction (one block each with automine), straight to Anvil."""

    def __init__(self, anchors: Anchors) -> None:
        super().__init__(daemon=True)
        self.anchors = anchors
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                self.anchors.send(1)
                self.stop_event.wait(0.1)
        except BaseException as exc:
            self.error = exc


def step_fails_unavailable(factory: SessionFactory, watcher: ChainWatcher) -> bool:
    """Run one step ourselves; retry while the loop holds the chain's writer lock."""
    for _ in range(50):
        try:
            with session_scope(factory) as session:
                result = watcher.step(session)
        except RPCUnavailable:
            return True
        assert result.status == "busy", result
        time.sleep(0.1)
    return False


def test_rpc_outage_reports_lag_then_catches_up_without_losing_anything(
    watcher_settings: Settings,
    factory: SessionFactory,
    private_devnet: Devnet,
    proxy: RpcProxy,
    compiled: Any,
    tmp_path: Path,
) -> None:
    direct = Web3(Web3.HTTPProvider(private_devnet.rpc_url))
    anchors = deploy_anchor(direct, compiled)
    chain = private_devnet.chain_config(confirmations=CONFIRMATIONS).model_copy(
        update={"rpc_urls": (proxy.url,)}
    )
    settings = outage_settings(watcher_settings, chain, anchors.address, tmp_path)
    registry = load_chains(tmp_path / "chains.toml")
    through_proxy = ChainWatcher(EvmAdapter(chain), [anchors.address], default_registry())
    with session_scope(factory) as session:
        start_cursor(session, through_proxy.adapter, from_block=int(direct.eth.block_number) + 1)

    loop = IngestLoop(settings, factory, chain)
    producer = Producer(anchors)
    loop.start()
    producer.start()
    try:
        assert wait_for(lambda: len(loop.succeeded_since(0)) >= 3, timeout=60), loop.outcomes
        proxy.down()
        outage_started = time.monotonic()
        outage_index = len(loop.outcomes)
        with factory() as session:
            before = log_keys(session, chain.chain_id)

        # A step during the outage fails with RPCUnavailable and writes nothing.
        assert step_fails_unavailable(factory, through_proxy)
        time.sleep(max(0.0, outage_started + 15.0 - time.monotonic()))
        with factory() as session:
            (first,) = chain_health(session, registry)
            stuck_cursor = first.cursor.block_number
        assert first.rpc_unavailable
        assert first.rpc_unavailable_since is not None
        time.sleep(max(0.0, outage_started + OUTAGE_SECONDS - time.monotonic()))
        with factory() as session:
            (second,) = chain_health(session, registry)
            during = log_keys(session, chain.chain_id)
        assert second.rpc_unavailable
        assert second.rpc_unavailable_since == first.rpc_unavailable_since  # since-when is fixed
        assert second.stale_seconds > first.stale_seconds  # ... and the outage keeps growing
        assert second.cursor.block_number == stuck_cursor
        assert during == before  # nothing written while the node was away
        failed = loop.outcomes[outage_index:]
        assert failed and all(o.get("error") == "RPCUnavailable" for o in failed), failed
        behind = int(direct.eth.block_number) - stuck_cursor
        assert behind > 2 * CONFIRMATIONS  # the chain moved on: the real lag grew meanwhile

        with TestClient(create_app(settings)) as client:
            (status,) = client.get("/v1/watcher/status").json()["chains"]
        assert status["cursor"] == stuck_cursor
        assert status["lag"] == first.lag  # as of the last successful read
        assert status["rpc_unavailable"] is True  # and the endpoint says the node is away
        assert status["rpc_unavailable_since"] is not None
        assert status["updated_at"] is not None

        proxy.up()
        recovered_at = len(loop.outcomes)
        head_at_recovery = int(direct.eth.block_number)
        assert wait_for(
            lambda: any(
                o["cursor"] >= head_at_recovery for o in loop.succeeded_since(recovered_at)
            ),
            timeout=60,
        ), loop.outcomes[recovered_at:]
    finally:
        producer.stop_event.set()
        producer.join(timeout=30)
        loop.stop_event.set()
        loop.join(timeout=60)
    assert producer.error is None, producer.error
    assert loop.crash is None, loop.crash
    with factory() as session:
        (after,) = chain_health(session, registry)
    assert not after.rpc_unavailable and after.rpc_unavailable_since is None

    anchors.mine(CONFIRMATIONS)
    assert ingest_chain(settings, factory, chain) is not None
    truth = EvmAdapter(private_devnet.chain_config(confirmations=CONFIRMATIONS))
    assert_consistent(factory, through_proxy, truth=truth)
    with factory() as session:
        stored = log_keys(session, chain.chain_id)
    sent = (
        direct.eth.contract(address=Web3.to_checksum_address(anchors.address), abi=ANCHOR_ABI)
        .functions.latest()
        .call()[0]
    )
    assert len(stored) == int(sent)  # one Anchored per send, from the first to the last
