"""DeFi pool state is read once per block for all concurrent requests, not once per request.

Every JSON-RPC request goes through a counting proxy in front of the real Anvil devnet, so the
counts are real RPC calls; nothing about the pool is simulated. The only thing the tests control
is the cache's clock (when the head is considered old), so blocks and head reads line up with
what the test does instead of with how fast the machine is.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from web3 import Web3

from backend.app import create_app
from backend.config import Settings
from backend.credit.chain import POOL_ABI, ChainReader
from backend.credit.models import Outcome
from backend.credit.pool_state import PoolStateCache
from backend.credit.sources import Ask
from backend.credit.sources.defi import quote_pool
from backend.providers.models import ProviderKind
from chain_adapters.base import ContractCall
from chain_adapters.devnet import Devnet
from chain_adapters.evm.adapter import EvmAdapter
from chain_adapters.registry import dump_chains, load_chains
from tests.auth.conftest import bearer, create_provider, sign_in
from tests.credit.conftest import MarketFiles, register_pool


@dataclass
class RpcCounter:
    """What went through the proxy: JSON-RPC methods, and eth_call targets."""

    methods: Counter[str] = field(default_factory=Counter)
    calls_to: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, payload: Any) -> None:
        for item in payload if isinstance(payload, list) else [payload]:
            with self.lock:
                self.methods[item.get("method", "")] += 1
                if item.get("method") == "eth_call":
                    target = str(item["params"][0].get("to", "")).lower()
                    self.calls_to[target] += 1


@dataclass
class Proxy:
    url: str
    counter: RpcCounter


@contextmanager
def counting_proxy(upstream: str) -> Iterator[Proxy]:
    """A JSON-RPC proxy on a free local port that forwards to `upstream` and counts."""
    counter = RpcCounter()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            counter.count(json.loads(body))
            forwarded = urllib.request.Request(  # noqa: S310 - the devnet's own http:// URL
                upstream, data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(forwarded, timeout=30) as answer:  # noqa: S310
                reply = answer.read()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Proxy(f"http://127.0.0.1:{server.server_address[1]}", counter)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class StepClock:
    """The cache's notion of now, moved by the test (head age is not left to machine speed)."""

    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def proxied_chains_file(tmp_path: Path, devnets: list[Devnet], proxies: dict[int, Proxy]) -> Path:
    path = tmp_path / "chains-proxied.toml"
    configs = [
        d.chain_config().model_copy(update={"rpc_urls": (proxies[d.chain_id].url,)})
        for d in devnets
    ]
    path.write_text(dump_chains(configs))
    return path


def contract_rate(devnet: Devnet, pool: str, amount: int) -> int:
    """borrowRateAfter(amount) straight from the node (not through the proxy)."""
    adapter = EvmAdapter(devnet.chain_config())
    return int(adapter.call(ContractCall(pool, POOL_ABI, "borrowRateAfter", (amount,))))


def ask(chain_id: int, amount: int) -> Ask:
    return Ask(
        request_id=f"req-{amount}",
        wallet="0x" + "ab" * 20,
        asset="USDC",
        amount=amount,
        term_days=90,
        chain_id=chain_id,
        score=650,
        reasons=(),
        collateral=None,
        respond_by="2030-01-01T00:00:00Z",
    )


def test_concurrent_quotes_read_the_pool_once_per_block(
    tmp_path: Path, market: Any, chains: list[Devnet], w3: Web3, settings: Settings
) -> None:
    devnet = chains[0]
    pool = market.chains[devnet.chain_id].contracts[market.chains[devnet.chain_id].pool.label]
    amounts = [(i + 1) * 1_000 * 10**6 for i in range(16)]  # 16 requests, 16 different amounts
    with counting_proxy(devnet.rpc_url) as proxy:
        chains_file = proxied_chains_file(tmp_path, [devnet], {devnet.chain_id: proxy})
        reader = ChainReader(settings, load_chains(chains_file))
        clock = StepClock()
        cache = PoolStateCache(reader, head_max_age=1.0, clock=clock)

        async def burst() -> list[Any]:
            return list(
                await asyncio.gather(
                    *(quote_pool(cache, ask(devnet.chain_id, a), pool=pool) for a in amounts)
                )
            )

        first = asyncio.run(burst())
        reads_per_block = proxy.counter.calls_to[pool.lower()]
        assert proxy.counter.methods["eth_blockNumber"] == 1
        assert cache.stats.pool_reads == 1
        assert reads_per_block > 0  # and every one of them was this single reading's

        # priced by our model copy, yet equal to the contract's own rate for each amount
        for amount, result in zip(amounts, first, strict=True):
            assert result.outcome is Outcome.QUOTED, result.reason
            assert result.quote.rate_ray == contract_rate(devnet, pool, amount)

        # same block, head still fresh: nothing is read again
        asyncio.run(burst())
        assert proxy.counter.methods["eth_blockNumber"] == 1
        assert proxy.counter.calls_to[pool.lower()] == reads_per_block

        # head old but no new block: the head is read once more, the pool is not
        clock.now += 2
        asyncio.run(burst())
        assert proxy.counter.methods["eth_blockNumber"] == 2
        assert proxy.counter.calls_to[pool.lower()] == reads_per_block

        # a new block: one more head read and exactly one more pool reading for everybody
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        clock.now += 2
        asyncio.run(burst())
        assert proxy.counter.methods["eth_blockNumber"] == 3
        assert proxy.counter.calls_to[pool.lower()] == 2 * reads_per_block
        assert cache.stats.pool_reads == 2


AMOUNT = 50_000 * 10**6
REQUEST: dict[str, Any] = {
    "amount": str(AMOUNT),
    "asset": "USDC",
    "term_days": 90,
    "purpose": "working capital",
}


def test_concurrent_credit_requests_share_one_pool_read_per_block(
    tmp_path: Path,
    market: Any,
    chains: list[Devnet],
    market_files: MarketFiles,
    make_settings: Callable[..., Settings],
) -> None:
    with counting_proxy(chains[0].rpc_url) as p0, counting_proxy(chains[1].rpc_url) as p1:
        proxies = {chains[0].chain_id: p0, chains[1].chain_id: p1}
        config = make_settings(
            data_dir=market_files.data_dir,
            chains_file=proxied_chains_file(tmp_path, chains, proxies),
            credit_assets_file=market_files.assets_file,
            credit_sanctions_file=market_files.sanctions_file,
            credit_head_max_age=0.0,  # every request asks for the head; blocks still decide
        )
        pools: dict[int, str] = {}
        for chain_id, chain in market.chains.items():
            pid, _ = create_provider(config, kind=ProviderKind.DEFI)
            pools[pid] = chain.contracts[chain.pool.label].lower()
            register_pool(config, pid, chain_id, pools[pid])
        with TestClient(create_app(config)) as client:
            token = sign_in(client, market.borrower)

            def one(_: int) -> dict[str, Any]:
                answer = client.post("/v1/credit-requests", json=REQUEST, headers=bearer(token))
                assert answer.status_code == 201, answer.text
                body: dict[str, Any] = answer.json()
                return body

            with ThreadPoolExecutor(max_workers=8) as pool_of_clients:
                bodies = list(pool_of_clients.map(one, range(8)))
            cache: PoolStateCache = client.app.state.credit_runtime.pools  # type: ignore[attr-defined]

    for body in bodies:
        assert {q["provider_id"] for q in body["quotes"]} == set(pools)
    for devnet in chains:
        chain = market.chains[devnet.chain_id]
        pool = chain.contracts[chain.pool.label].lower()
        # no block was mined during the requests: one reading of each pool served all eight
        one_reading = calls_per_reading(tmp_path, devnet, pool, config)
        assert proxies[devnet.chain_id].counter.calls_to[pool] == one_reading
        assert proxies[devnet.chain_id].counter.methods["eth_blockNumber"] >= 1
        # the gas price (a block's base fee) was read once for all eight requests, too
        assert proxies[devnet.chain_id].counter.methods["eth_getBlockByNumber"] == 1
    # and so was every feed price: one read per (chain, value, block), the rest served
    assert cache.stats.value_reads == len(cache._values) >= len(chains)
    assert len({key[:-1] for key in cache._values}) == len(cache._values)  # one block each


def calls_per_reading(tmp_path: Path, devnet: Devnet, pool: str, config: Settings) -> int:
    """How many eth_calls one reading of `pool` makes, counted by doing one through a proxy."""
    with counting_proxy(devnet.rpc_url) as proxy:
        chains_file = proxied_chains_file(tmp_path, [devnet], {devnet.chain_id: proxy})
        cache = PoolStateCache(ChainReader(config, load_chains(chains_file)))
        asyncio.run(cache.reading(devnet.chain_id, pool))
        return proxy.counter.calls_to[pool]
