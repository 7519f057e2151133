"""Backfill over adaptive ranges through a real limiting JSON-RPC proxy, then live hand-off."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from backend.db import SessionFactory
from backend.watcher.backfill import backfill
from backend.watcher.ingest import ChainWatcher, FetchedRange
from backend.watcher.models import WatcherCursor
from backend.watcher.projections import default_registry
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
        self.limit = RESULT_LIMIT
        self.fail_from: int | None = None  # eth_getLogs from this block on: a provider error
        self.failed_from: list[int] = []
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
                    start = int(request["params"][0]["fromBlock"], 16)
                    if proxy.fail_from is not None and start >= proxy.fail_from:
                        proxy.failed_from.append(start)
                        answer = {
                            "jsonrpc": "2.0",
                            "id": request.get("id"),
                            "error": {"code": -32000, "message": "upstream unavailable"},
                        }
                    if len(answer.get("result") or []) > proxy.limit:
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


class RecordingWatcher(ChainWatcher):
    """The real watcher; it only notes which ranges were read ahead (on the helper thread)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.read_ahead: list[tuple[int, int]] = []

    def fetch_range(self, first: int, last: int) -> FetchedRange:
        self.read_ahead.append((first, last))
        return super().fetch_range(first, last)


def recording_watcher(devnet: Devnet, address: str, rpc_url: str) -> RecordingWatcher:
    config = devnet.chain_config(confirmations=3).model_copy(update={"rpc_urls": (rpc_url,)})
    return RecordingWatcher(EvmAdapter(config), [address], default_registry())


def test_prefetched_final_ranges_store_exactly_the_chain(
    factory: SessionFactory, anchors: Anchors, chains: list[Devnet], proxy: LimitingProxy
) -> None:
    proxy.limit = 10_000
    for _ in range(10):
        anchors.send(2)
    start = int(anchors.w3.eth.block_number) - 25
    watcher = recording_watcher(chains[0], anchors.address, proxy.url)
    results = backfill(factory, watcher, from_block=start, ranges=AdaptiveRange(span=3, maximum=4))
    assert len(watcher.read_ahead) >= 3, "no range was read ahead"
    advanced = [r for r in results if r.status == "advanced"]
    for before, after in itertools.pairwise(advanced):
        assert before.last is not None
        assert after.first == before.last + 1  # contiguous: no gap, no overlap
    assert {(r.first, r.last) for r in advanced} >= set(watcher.read_ahead[:-1])
    assert results[-1].cursor == results[-1].finalized
    assert_consistent(factory, watcher, truth=EvmAdapter(chains[0].chain_config()))
    anchors.send(2)  # live after a prefetched backfill: the unfinalised window, no read-ahead
    ahead = len(watcher.read_ahead)
    run_to_head(factory, watcher)
    assert_consistent(factory, watcher, truth=EvmAdapter(chains[0].chain_config()))
    assert len(watcher.read_ahead) == ahead


def test_failed_read_ahead_leaves_the_cursor_at_the_last_committed_range(
    factory: SessionFactory, anchors: Anchors, chains: list[Devnet], proxy: LimitingProxy
) -> None:
    proxy.limit = 10_000
    for _ in range(8):
        anchors.send(2)
    start = int(anchors.w3.eth.block_number) - 20
    proxy.fail_from = start + 9
    watcher = recording_watcher(chains[0], anchors.address, proxy.url)
    committed: list[int] = []
    with pytest.raises(Exception, match="upstream unavailable"):
        backfill(
            factory,
            watcher,
            from_block=start,
            ranges=AdaptiveRange(span=3, maximum=3),
            progress=lambda result: committed.append(result.cursor),
        )
    assert proxy.failed_from, "the failing range was never requested"
    assert any(first == proxy.failed_from[0] for first, _ in watcher.read_ahead)
    with factory() as session:
        cursor = session.get(WatcherCursor, watcher.chain_id)
        assert cursor is not None
        assert cursor.block_number == committed[-1] == proxy.failed_from[0] - 1
    assert_consistent(factory, watcher, truth=EvmAdapter(chains[0].chain_config()))
    proxy.fail_from = None  # the provider recovers: the backfill resumes at cursor + 1
    results = backfill(factory, watcher, from_block=start, ranges=AdaptiveRange(span=3))
    assert results[0].first == proxy.failed_from[0]
    assert results[-1].cursor == results[-1].finalized
    assert_consistent(factory, watcher, truth=EvmAdapter(chains[0].chain_config()))


def test_ranges_converge_on_the_target_number_of_logs() -> None:
    ranges = AdaptiveRange(span=100, maximum=10_000, target_logs=1_000)
    ranges.observe(200)  # sparse: grow
    assert ranges.span == 200
    ranges.observe(1_500)  # about right: keep
    assert ranges.span == 200
    ranges.observe(5_000)  # dense: halve
    assert ranges.span == 100
    with pytest.raises(ValueError):
        AdaptiveRange(target_logs=0)
