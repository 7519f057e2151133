"""RPC failover against real nodes: dead ports, a node stopped mid-test, stale heads, HTTP errors.

The misbehaving endpoints are real HTTP servers (a closed port, a stopped Anvil, a tiny server
answering 429/401), never a mock of the pool itself.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chain_adapters.base import LogQueryTooLarge
from chain_adapters.devnet import Devnet, free_port
from chain_adapters.evm import EvmAdapter, PoolPolicy
from chain_adapters.exceptions import ChainIdMismatch, RPCUnavailable
from chain_adapters.rpc import rpc_call
from tests.chain_adapters.conftest import FAST_POOL, chain_config


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


class _StatusServer:
    """Answers every POST with one HTTP status; counts the requests it got."""

    def __init__(self, status: int) -> None:
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                owner.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def status_server() -> Iterator[Callable[[int], _StatusServer]]:
    servers: list[_StatusServer] = []

    def start(status: int) -> _StatusServer:
        servers.append(_StatusServer(status))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_dead_first_url_fails_over_to_second(devnet_a: Devnet) -> None:
    adapter = EvmAdapter(
        chain_config(devnet_a, urls=(dead_url(), devnet_a.rpc_url)), pool_policy=FAST_POOL
    )
    adapter.connect()  # the dead URL is skipped, the live one is checked
    assert adapter.head() == int(rpc_call(devnet_a.rpc_url, "eth_blockNumber"), 16)
    dead, live = adapter.provider.statuses()
    assert dead.failures >= 1 and "ConnectionError" in dead.last_error
    assert live.failures == 0


def test_first_node_stopped_mid_test(private_devnet: Callable[..., Devnet]) -> None:
    first, second = private_devnet(chain_id=4242), private_devnet(chain_id=4242)
    rpc_call(second.rpc_url, "anvil_mine", ["0x3"])  # tell the nodes apart by height
    policy = PoolPolicy(request_timeout=2.0, max_rounds=2, backoff_initial=0.01, head_refresh=60)
    adapter = EvmAdapter(
        chain_config(first, urls=(first.rpc_url, second.rpc_url)), pool_policy=policy
    )
    adapter.connect()
    assert adapter.head() == 0  # served by the first URL
    first.stop()
    assert adapter.head() == 3  # same adapter, now served by the second
    assert adapter.block("latest").number == 3
    assert adapter.provider.statuses()[0].failures >= 1


def test_all_urls_dead_raises_rpc_unavailable_naming_the_chain() -> None:
    urls = (dead_url(), dead_url())
    adapter = EvmAdapter(chain_config(urls=urls, name="lonely-chain"), pool_policy=FAST_POOL)
    started = time.monotonic()
    with pytest.raises(RPCUnavailable) as caught:
        adapter.head()
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "[lonely-chain]" in message
    assert caught.value.chain == "lonely-chain"
    assert all(url in message for url in urls)
    # connect() says the same thing
    with pytest.raises(RPCUnavailable, match="lonely-chain"):
        adapter.connect()


def test_transient_errors_are_retried_with_backoff(
    status_server: Callable[[int], _StatusServer],
) -> None:
    throttled = status_server(429)
    sleeps: list[float] = []
    policy = PoolPolicy(max_rounds=3, backoff_initial=0.01, backoff_max=0.04, cooldown=0)
    adapter = EvmAdapter(chain_config(urls=(throttled.url,)), pool_policy=policy)
    adapter.provider._sleep = sleeps.append  # record instead of waiting
    with pytest.raises(RPCUnavailable, match="HTTP 429"):
        adapter.head()
    assert throttled.requests == 3  # one per round
    assert sleeps == sorted(sleeps) and len(sleeps) == 2  # exponential, between rounds


def test_non_transient_errors_are_not_retried(
    status_server: Callable[[int], _StatusServer],
) -> None:
    refusing = status_server(401)
    adapter = EvmAdapter(chain_config(urls=(refusing.url,)), pool_policy=FAST_POOL)
    with pytest.raises(RPCUnavailable, match="HTTP 401"):
        adapter.head()
    assert refusing.requests == 1


def test_rate_limited_url_fails_over(
    devnet_a: Devnet, status_server: Callable[[int], _StatusServer]
) -> None:
    throttled = status_server(429)
    adapter = EvmAdapter(
        chain_config(devnet_a, urls=(throttled.url, devnet_a.rpc_url)), pool_policy=FAST_POOL
    )
    assert adapter.get_balance("0x" + "00" * 20) >= 0
    assert throttled.requests == 1
    adapter.head()
    assert throttled.requests == 1  # in cool-down: not asked again


def test_lagging_url_is_skipped(private_devnet: Callable[..., Devnet]) -> None:
    lagging, leading = private_devnet(chain_id=4343), private_devnet(chain_id=4343)
    rpc_call(leading.rpc_url, "anvil_mine", ["0xa"])
    policy = PoolPolicy(max_head_lag=5, head_refresh=0)
    adapter = EvmAdapter(
        chain_config(lagging, urls=(lagging.rpc_url, leading.rpc_url)), pool_policy=policy
    )
    assert adapter.block("latest").number == 10  # the first URL is 10 blocks behind: skipped
    rpc_call(lagging.rpc_url, "anvil_mine", ["0x8"])
    assert adapter.block("latest").number == 8  # caught up within the lag: preferred again


def test_stalled_url_is_skipped(private_devnet: Callable[..., Devnet]) -> None:
    stalled, moving = private_devnet(chain_id=4444), private_devnet(chain_id=4444)
    policy = PoolPolicy(max_head_lag=100, stall_factor=2, head_refresh=0)
    adapter = EvmAdapter(
        chain_config(stalled, urls=(stalled.rpc_url, moving.rpc_url), block_time=0.1),
        pool_policy=policy,
    )
    assert adapter.block("latest").number == 0  # both at genesis: first URL
    time.sleep(0.3)  # > stall_factor * block_time
    rpc_call(moving.rpc_url, "anvil_mine", ["0x1"])
    assert adapter.block("latest").number == 1  # first URL has not moved for 0.3 s: skipped


def test_url_coming_back_on_another_chain_is_refused(
    private_devnet: Callable[..., Devnet], devnet_a: Devnet
) -> None:
    other = private_devnet(chain_id=5555)
    adapter = EvmAdapter(
        chain_config(devnet_a, urls=(other.rpc_url, devnet_a.rpc_url)), pool_policy=FAST_POOL
    )
    with pytest.raises(ChainIdMismatch):
        adapter.head()


class _InfuraLikeServer:
    """Answers eth_chainId and eth_blockNumber; refuses every eth_getLogs the way Infura does,
    with -32005 (the code its rate limiter also uses) and "query returned more than ..."."""

    def __init__(self, chain_id: int) -> None:
        self.log_queries = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                answer: dict[str, object] = {"jsonrpc": "2.0", "id": request["id"]}
                if request["method"] == "eth_getLogs":
                    owner.log_queries += 1
                    answer["error"] = {
                        "code": -32005,
                        "message": "query returned more than 10000 results",
                    }
                elif request["method"] == "eth_chainId":
                    answer["result"] = hex(chain_id)
                else:
                    answer["result"] = "0x10"
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def test_a_log_range_refusal_is_an_answer_to_shrink_not_an_outage() -> None:
    server = _InfuraLikeServer(chain_id=31337)
    try:
        adapter = EvmAdapter(chain_config(urls=(server.url,)), pool_policy=FAST_POOL)
        with pytest.raises(LogQueryTooLarge, match="more than 10000"):
            adapter.fetch_logs(from_block=0, to_block=5000)
        assert server.log_queries == 1  # not retried as if the node were down
    finally:
        server.server.shutdown()
        server.server.server_close()
