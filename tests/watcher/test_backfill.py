"""Backfill over adaptive ranges through a real limiting JSON-RPC proxy, then live hand-off."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from backend.db import SessionFactory
from backend.watcher.backfill import backfill
from backend.watcher.ranges import AdaptiveRange
from chain_adapters.devnet import Devnet
from chain_adapters.evm.adapter import EvmAdapter
from tests.watcher.conftest import Anchors, assert_consistent, make_watcher, run_to_head

RESULT_LIMIT = 4


class LimitingProxy:
    """Forwards JSON-RPC to Anvil; refuses eth_getLogs answers over RESULT_LIMIT like Alchemy."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.refused = 0
        self.get_logs_calls = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = json.loads(body)
                answer = requests.post(
                    proxy.upstream,
                    data=body,
                    timeout=10,
                    headers={"Content-Type": "application/json"},
                ).json()
                if request.get("method") == "eth_getLogs":
                    proxy.get_logs_calls += 1
                    if len(answer.get("result") or []) > RESULT_LIMIT:
                        proxy.refused += 1
                        answer = {
                            "jsonrpc": "2.0",
                            "id": request.get("id"),
                            "error": {
                                "code": -32602,
                                "message": f"query returned more than {RESULT_LIMIT} results",
                            },
                        }
                payload = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def proxy(chains: list[Devnet]) -> Iterator[LimitingProxy]:
    running = LimitingProxy(chains[0].rpc_url)
    running.thread.start()
    try:
        yield running
    finally:
        running.server.shutdown()
        running.server.server_close()


def test_backfill_shrinks_on_too_many_results_and_hands_off_to_live(
    factory: SessionFactory, anchors: Anchors, chains: list[Devnet], proxy: LimitingProxy
) -> None:
    for _ in range(12):
        anchors.send(2)
    start = int(anchors.w3.eth.block_number) - 30
    watcher = make_watcher(chains[0], anchors.address, confirmations=4, rpc_url=proxy.url)
    ranges = AdaptiveRange(span=64, maximum=64)
    results = backfill(factory, watcher, from_block=start, ranges=ranges)
    assert proxy.refused > 0, "the proxy never refused: the test did not exercise shrinking"
    assert all(r.logs <= RESULT_LIMIT for r in results)
    assert results[-1].cursor == results[-1].finalized
    assert_consistent(factory, watcher, truth=EvmAdapter(chains[0].chain_config()))
    # Live: more events arrive, including inside the not-yet-final window the backfill left.
    anchors.send(3)
    run_to_head(factory, watcher)
    assert_consistent(
        factory, watcher, truth=EvmAdapter(chains[0].chain_config())
    )  # same logs as the chain: no gap, no duplicate


def test_adaptive_range_grows_and_shrinks_within_bounds() -> None:
    ranges = AdaptiveRange(span=8, minimum=2, maximum=32)
    ranges.grow()
    ranges.grow()
    ranges.grow()
    assert ranges.span == 32
    assert ranges.shrink() and ranges.span == 16
    for _ in range(5):
        ranges.shrink()
    assert ranges.span == 2
    assert not ranges.shrink()
