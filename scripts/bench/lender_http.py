#!/usr/bin/env python3
"""Client CPU per lender call, side by side: the previous httpx + aiohttp transport, plain
aiohttp, and `backend.credit.lender_http.LenderClient`.

    .venv/bin/python scripts/bench/lender_http.py [--calls 2000] [--concurrency 20] [--rounds 3]

One aiohttp lender server runs in a subprocess and answers every POST at once with a small
JSON quote, so the client process's CPU (`time.process_time`) is what the client costs: the
number the fan-out pays per lender call. Each round runs every client once, in a rotating
order, after a warm-up that opens the connections; the table shows each client's best round
(least disturbed by other work on the box). Prints only, asserts nothing.

The "previous" client is a copy of `AiohttpTransport` as it was in `backend/credit/http_pool.py`,
kept here so the comparison survives that module's removal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from backend.credit.lender_http import LenderClient  # noqa: E402

ANSWER = {
    "decision": "quote",
    "apr": "0.1150",
    "origination_fee": "2500",
    "address": "0x" + "ab" * 20,
}
BODY = json.dumps(
    {"type": "credit_request.quote_requested", "id": "evt_" + "0" * 32, "data": {"x": "y" * 400}}
).encode()
HEADERS = {"Content-Type": "application/json", "Credagg-Signature": "t=1700000000,v1=" + "f" * 64}


# -- the lender server (subprocess) ----------------------------------------------------------


def serve(port: int) -> None:
    from aiohttp import web

    payload = json.dumps(ANSWER).encode()

    async def quote(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=payload, content_type="application/json")

    app = web.Application()
    app.router.add_post("/lender/{index}", quote)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the lender server did not start")


# -- (a) the previous path: httpx over aiohttp's pool (copy of http_pool.AiohttpTransport) -------


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_connections: int, keepalive_seconds: float = 30.0) -> None:
        self._max_connections = max_connections
        self._keepalive = keepalive_seconds
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                keepalive_timeout=self._keepalive,
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None, connect=timeouts.get("connect"), sock_read=timeouts.get("read")
        )
        body = await request.aread()
        try:
            async with self._client().request(
                request.method,
                str(request.url),
                headers=list(request.headers.multi_items()),
                data=body or None,
                timeout=timeout,
                allow_redirects=False,
            ) as answer:
                content = await answer.read()
                return httpx.Response(
                    status_code=answer.status,
                    headers=[
                        (k.decode("latin-1"), v.decode("latin-1")) for k, v in answer.raw_headers
                    ],
                    content=content,
                    request=request,
                )
        except TimeoutError as exc:
            raise httpx.ReadTimeout(f"no answer in time: {exc!r}", request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}", request=request) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


# -- the clients under test ------------------------------------------------------------------

Post = Callable[[str], Awaitable[tuple[int, bytes]]]


class Current:
    name = "httpx + AiohttpTransport (previous)"

    def __init__(self, connections: int) -> None:
        self.client = httpx.AsyncClient(
            timeout=2.0, transport=AiohttpTransport(max_connections=connections)
        )

    async def post(self, url: str) -> tuple[int, bytes]:
        response = await self.client.post(url, content=BODY, headers=HEADERS)
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self.client.aclose()


class PlainAiohttp:
    name = "aiohttp.ClientSession"

    def __init__(self, connections: int) -> None:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, keepalive_timeout=30.0),
            timeout=aiohttp.ClientTimeout(total=2.0),
            auto_decompress=False,
        )

    async def post(self, url: str) -> tuple[int, bytes]:
        async with self.session.post(url, data=BODY, headers=HEADERS) as response:
            return response.status, await response.read()

    async def aclose(self) -> None:
        await self.session.close()


class Lean:
    name = "LenderClient (new)"

    def __init__(self, connections: int) -> None:
        self.client = LenderClient(timeout=2.0, max_connections=connections)

    async def post(self, url: str) -> tuple[int, bytes]:
        response = await self.client.post(url, content=BODY, headers=HEADERS)
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self.client.aclose()


async def drive(post: Post, urls: list[str], calls: int, concurrency: int) -> tuple[float, float]:
    """`calls` POSTs from `concurrency` workers; (client CPU seconds, wall seconds)."""
    left = calls

    async def worker(index: int) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            status, content = await post(urls[(index + left) % len(urls)])
            if status != 200 or not content:
                raise RuntimeError(f"bad answer {status}")

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return time.process_time() - cpu, time.perf_counter() - wall


async def run(port: int, calls: int, concurrency: int, rounds: int, lenders: int) -> None:
    urls = [f"http://127.0.0.1:{port}/lender/{i}" for i in range(lenders)]
    kinds = [Current, PlainAiohttp, Lean]
    best: dict[str, tuple[float, float]] = {}
    for round_no in range(rounds):
        order = kinds[round_no % 3 :] + kinds[: round_no % 3]
        for kind in order:
            client = kind(concurrency)
            await drive(client.post, urls, concurrency * 5, concurrency)  # warm: open the pool
            cpu, wall = await drive(client.post, urls, calls, concurrency)
            await client.aclose()
            if kind.name not in best or cpu < best[kind.name][0]:
                best[kind.name] = (cpu, wall)
    base = best[Current.name][0]
    print(
        f"\n{calls} POSTs, concurrency {concurrency}, {lenders} lender paths on one aiohttp server "
        f"(subprocess); best of {rounds} rounds; client-process CPU only\n"
    )
    print("| client | CPU ms / call | calls / s | CPU vs previous |")
    print("|---|---:|---:|---:|")
    for kind in kinds:
        cpu, wall = best[kind.name]
        print(
            f"| {kind.name} | {cpu / calls * 1000:.3f} | {calls / wall:,.0f} | {cpu / base:.2f}x |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lenders", type=int, default=20, help="distinct URL paths (one host)")
    parser.add_argument("--uvloop", action="store_true", help="run the client on uvloop")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        wait_listening(port)
        coroutine = run(port, args.calls, args.concurrency, args.rounds, args.lenders)
        if args.uvloop:
            import uvloop

            uvloop.run(coroutine)
        else:
            asyncio.run(coroutine)
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
