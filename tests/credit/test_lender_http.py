"""`LenderClient` against real local servers: an aiohttp app for the ordinary path, and a raw
asyncio socket server that writes exact bytes for the edge cases (chunked, close-delimited,
Connection: close, stalls, early closes, garbage, oversize) and counts what it accepts.

Each test runs its own event loop (`asyncio.run`) and its own servers on ephemeral ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvloop
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.credit.lender_http import MAX_BODY, LenderClient

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

Respond = Callable[["RawServer", asyncio.StreamWriter, bytes, int], Awaitable[bool | None]]


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coroutine)


async def read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One request's body (Content-Length framed, as LenderClient sends), None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return await reader.readexactly(length)


class RawServer:
    """A keep-alive HTTP/1.1 server whose answers are raw bytes written by `respond`.

    `respond(server, writer, body, n)` gets each request's body and its 0-based index on that
    connection; returning True closes the connection after it. Counts accepted connections,
    requests, and the most connections open at once.
    """

    def __init__(self, respond: Respond, *, tls: ssl.SSLContext | None = None) -> None:
        self.respond = respond
        self.tls = tls
        self.accepts = 0
        self.requests = 0
        self.open = 0
        self.max_open = 0
        self.closed_by_client = 0
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/lender/quote?x=1"

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepts += 1
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        try:
            index = 0
            while True:
                body = await read_request(reader)
                if body is None:
                    self.closed_by_client += 1
                    return
                self.requests += 1
                if await self.respond(self, writer, body, index):
                    return
                await writer.drain()
                index += 1
        except ConnectionError:
            self.closed_by_client += 1
        except asyncio.CancelledError:
            return  # the test's loop is ending: a handler still stalling is not an error
        finally:
            self.open -= 1
            writer.close()


def answer(raw: bytes, *, close: bool = False) -> Respond:
    async def respond(_s: RawServer, writer: asyncio.StreamWriter, _b: bytes, _n: int) -> bool:
        writer.write(raw)
        return close

    return respond


@contextlib.asynccontextmanager
async def serving(
    respond: Respond, **options: Any
) -> AsyncIterator[tuple[RawServer, LenderClient]]:
    """A raw server and a client (timeout 2 s unless `options` say otherwise)."""
    async with RawServer(respond) as server, LenderClient(**{"timeout": 2.0, **options}) as client:
        yield server, client


def post(client: LenderClient, url: str, body: bytes = b"{}") -> Awaitable[Any]:
    return client.post(url, content=body, headers={"Content-Type": "application/json"})


# -- the ordinary path (aiohttp server) ------------------------------------------------------


async def aiohttp_server(handler: Callable[[web.Request], Awaitable[web.Response]]) -> Any:
    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.05)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


def test_post_round_trips_body_headers_and_json_through_aiohttp() -> None:
    async def scenario() -> None:
        seen: dict[str, Any] = {}

        async def echo(request: web.Request) -> web.Response:
            seen["headers"] = dict(request.headers)
            seen["path"] = request.path_qs
            body = await request.read()
            return web.json_response(
                {"len": len(body), "sig": request.headers["Credagg-Signature"]},
                status=201,
                headers={"X-Lender": "a", "x-lender-extra": "b"},
            )

        runner, port = await aiohttp_server(echo)
        try:
            async with LenderClient(timeout=2.0, max_connections=4) as client:
                body = json.dumps({"amount": "1000", "ü": "€"}).encode()
                response = await client.post(
                    f"http://127.0.0.1:{port}/hook/a?b=c",
                    content=body,
                    headers={"Content-Type": "application/json", "Credagg-Signature": "t=1,v1=ab"},
                )
                assert response.status_code == 201
                assert response.json() == {"len": len(body), "sig": "t=1,v1=ab"}
                assert response.headers["x-lender"] == "a"
                assert response.headers["X-LENDER-EXTRA"] == "b"
                assert "content-type" in response.headers
                assert seen["path"] == "/hook/a?b=c"
                assert seen["headers"]["Host"] == f"127.0.0.1:{port}"
                assert seen["headers"]["Content-Length"] == str(len(body))
        finally:
            await runner.cleanup()

    run(scenario())


@pytest.mark.parametrize(
    ("behaviour", "outcome"),
    [("quote", "quoted"), ("hang", "timed_out"), ("500", "error"), ("refuse", "error")],
)
def test_the_fanout_exchange_works_unchanged_over_lender_client(
    behaviour: str, outcome: str
) -> None:
    """`sources.traditional._exchange` only duck-types the client: the same outcomes as with
    httpx (a quote, a timeout, an HTTP error, a refused connection)."""
    from backend.credit.sources.traditional import _exchange

    async def scenario() -> None:
        async def lender(request: web.Request) -> web.Response:
            data = await request.json()
            assert data["type"] == "credit_request.quote_requested"
            assert request.headers["Credagg-Signature"].startswith("t=")
            if behaviour == "hang":
                await asyncio.sleep(1)  # past the client's 0.3 s
            if behaviour == "500":
                return web.Response(status=500)
            return web.json_response(
                {"decision": "quote", "apr": "0.1150", "origination_fee": "25",
                 "address": "0x" + "ab" * 20}
            )  # fmt: skip

        runner, port = await aiohttp_server(lender)
        if behaviour == "refuse":
            await runner.cleanup()
        try:
            async with LenderClient(timeout=0.3) as client:
                result = await _exchange(
                    client,  # type: ignore[arg-type]  # until traditional.py takes LenderPoster
                    _ask(),
                    url=f"http://127.0.0.1:{port}/q",
                    secrets=["whsec_test"],
                    slot=None,
                )
                assert result.outcome == outcome, result
        finally:
            await runner.cleanup()

    run(scenario())


def _ask() -> Any:
    from backend.credit.sources import Ask

    respond_by = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=5)
    return Ask(
        request_id="req_1",
        wallet="0x" + "cd" * 20,
        asset="0x" + "a0" * 20,
        amount=1_000_000,
        term_days=30,
        chain_id=31337,
        score=700,
        reasons=(),
        collateral=None,
        respond_by=respond_by.isoformat(),
    )


# -- keep-alive and the pool -----------------------------------------------------------------


def test_sequential_calls_reuse_one_tcp_connection() -> None:
    async def scenario() -> None:
        async with serving(answer(OK), max_connections=4) as (server, client):
            for _ in range(25):
                response = await post(client, server.url)
                assert response.content == b"ok"
            assert server.accepts == 1
            assert server.requests == 25
            assert client.connections == 1

    run(scenario())


def test_connection_close_from_the_server_is_honoured() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"

    async def scenario() -> None:
        # The server keeps its side open: only the header tells the client not to reuse.
        async with RawServer(answer(raw)) as server, LenderClient(timeout=2.0) as client:
            for _ in range(3):
                assert (await post(client, server.url)).content == b"ok"
                assert client.connections == 0
            assert server.accepts == 3

    run(scenario())


def test_server_closing_an_idle_connection_does_not_fail_the_next_call() -> None:
    async def scenario() -> None:
        async with serving(answer(OK, close=True)) as (server, client):
            assert (await post(client, server.url)).content == b"ok"
            await asyncio.sleep(0.05)  # the close arrives while the connection is idle
            assert client.connections == 0  # its slot was freed at once
            assert (await post(client, server.url)).content == b"ok"
            assert server.accepts == 2
            assert server.requests == 2

    run(scenario())


def test_a_stale_reused_connection_is_retried_once_on_a_fresh_one() -> None:
    """The race the retry exists for: the server closes a kept-alive connection just as the
    next request goes out on it, without answering a byte."""

    async def respond(_s: RawServer, writer: asyncio.StreamWriter, _b: bytes, n: int) -> bool:
        if n == 1:
            return True  # second request on a connection: close without answering
        writer.write(OK)
        return False

    async def scenario() -> None:
        async with RawServer(respond) as server, LenderClient(timeout=2.0) as client:
            assert (await post(client, server.url)).content == b"ok"
            assert (await post(client, server.url)).content == b"ok"
            assert server.accepts == 2
            assert server.requests == 3  # the POST was delivered twice: documented

    run(scenario())


def test_a_fresh_connection_closed_without_an_answer_is_not_retried() -> None:
    async def respond(_s: RawServer, _w: asyncio.StreamWriter, _b: bytes, _n: int) -> bool:
        return True

    async def scenario() -> None:
        async with RawServer(respond) as server, LenderClient(timeout=2.0) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await post(client, server.url)
            assert server.requests == 1
            assert client.connections == 0

    run(scenario())


def test_a_reused_connection_closed_mid_response_is_not_retried() -> None:
    async def respond(_s: RawServer, writer: asyncio.StreamWriter, _b: bytes, n: int) -> bool:
        if n == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\npart")
            return True
        writer.write(OK)
        return False

    async def scenario() -> None:
        async with RawServer(respond) as server, LenderClient(timeout=2.0) as client:
            await post(client, server.url)
            with pytest.raises(httpx.RemoteProtocolError):
                await post(client, server.url)
            assert server.requests == 2
            assert server.accepts == 1

    run(scenario())


def test_idle_connections_expire_after_the_keepalive_time() -> None:
    async def scenario() -> None:
        async with serving(answer(OK), keepalive_seconds=0.05) as (server, client):
            await post(client, server.url)
            await asyncio.sleep(0.1)
            await post(client, server.url)
            await asyncio.sleep(0.02)
            assert server.accepts == 2
            assert server.closed_by_client == 1  # the expired one was closed, not leaked

    run(scenario())


def test_concurrency_above_max_connections_waits_for_the_pool() -> None:
    async def slow(_s: RawServer, writer: asyncio.StreamWriter, _b: bytes, _n: int) -> bool:
        await asyncio.sleep(0.03)
        writer.write(OK)
        return False

    async def scenario() -> None:
        async with serving(slow, timeout=5.0, max_connections=3) as (server, client):
            answers = await asyncio.gather(*(post(client, server.url) for _ in range(20)))
            assert [a.content for a in answers] == [b"ok"] * 20
            assert server.max_open <= 3
            assert server.accepts <= 3
            assert client.connections <= 3

    run(scenario())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    limit=st.integers(1, 4),
    calls=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 15)), min_size=1, max_size=16),
)
def test_any_mix_of_hosts_and_latencies_completes_within_the_pool_limit(
    limit: int, calls: list[tuple[int, int]]
) -> None:
    """The law: whatever the mix of hosts and answer times, every call is answered (no waiter
    is forgotten, idle connections to the other host are evicted when needed), and a single
    host never accepts more than `limit` connections."""

    async def delayed(_s: RawServer, writer: asyncio.StreamWriter, body: bytes, _n: int) -> bool:
        await asyncio.sleep(int(body) / 1000)
        writer.write(OK)
        return False

    async def scenario() -> None:
        async with (
            RawServer(delayed) as a,
            RawServer(delayed) as b,
            LenderClient(timeout=5.0, max_connections=limit) as client,
        ):
            hosts = (a, b)
            answers = await asyncio.gather(
                *(post(client, hosts[h].url, str(ms).encode()) for h, ms in calls)
            )
            assert [r.content for r in answers] == [b"ok"] * len(calls)
            assert client.connections <= limit
            if len({h for h, _ in calls}) == 1:  # one host: no eviction, so no close/open lag
                assert max(a.accepts, b.accepts) <= limit

    run(scenario())


def test_waiting_for_a_pool_slot_counts_against_the_timeout() -> None:
    async def stall(_s: RawServer, _w: asyncio.StreamWriter, _b: bytes, _n: int) -> bool:
        await asyncio.sleep(10)
        return True

    async def scenario() -> None:
        async with (
            RawServer(stall) as server,
            LenderClient(timeout=5.0, max_connections=1) as client,
        ):
            first = asyncio.ensure_future(post(client, server.url))  # holds the only slot
            await asyncio.sleep(0.05)
            client.timeout = 0.2  # read at each call's start: only the second call's deadline
            with pytest.raises(httpx.PoolTimeout):
                await post(client, server.url)
            assert server.accepts == 1
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            assert client.connections == 0

    run(scenario())


def test_a_full_pool_of_idle_connections_to_another_host_makes_room() -> None:
    async def scenario() -> None:
        async with (
            RawServer(answer(OK)) as a,
            RawServer(answer(OK)) as b,
            LenderClient(timeout=2.0, max_connections=1) as client,
        ):
            await post(client, a.url)
            await post(client, b.url)  # would wait forever if a's idle one kept the slot
            await post(client, a.url)
            assert client.connections == 1
            assert (a.accepts, b.accepts) == (2, 1)

    run(scenario())


# -- framing ---------------------------------------------------------------------------------


def frame(body: bytes, framing: str, chunks: list[int]) -> bytes:
    """`body` as a response in `framing`, chunked at the sizes in `chunks` (cycled)."""
    if framing == "length":
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    if framing == "close":
        return b"HTTP/1.1 200 OK\r\n\r\n" + body
    out = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"]
    at, i = 0, 0
    while at < len(body):
        size = chunks[i % len(chunks)]
        piece = body[at : at + size]
        out.append(b"%x\r\n%s\r\n" % (len(piece), piece))
        at += size
        i += 1
    out.append(b"0\r\n\r\n")
    return b"".join(out)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.binary(max_size=3000),
    framing=st.sampled_from(["length", "chunked", "close"]),
    chunks=st.lists(st.integers(1, 700), min_size=1, max_size=6),
    writes=st.lists(st.integers(1, 500), min_size=1, max_size=6),
)
def test_any_body_in_any_framing_and_any_tcp_split_round_trips(
    body: bytes, framing: str, chunks: list[int], writes: list[int]
) -> None:
    """The law: whatever the framing, chunk sizes, and how the bytes are cut into TCP writes,
    `.content` is exactly the body sent, and the connection is reused iff the framing allows."""
    raw = frame(body, framing, chunks)

    async def respond(_s: RawServer, writer: asyncio.StreamWriter, _b: bytes, _n: int) -> bool:
        at, i = 0, 0
        while at < len(raw):
            size = writes[i % len(writes)]
            writer.write(raw[at : at + size])
            await writer.drain()
            await asyncio.sleep(0)
            at += size
            i += 1
        return framing == "close"

    async def scenario() -> None:
        async with RawServer(respond) as server, LenderClient(timeout=2.0) as client:
            for _ in range(2):
                response = await post(client, server.url)
                assert response.status_code == 200
                assert response.content == body
            assert server.accepts == (2 if framing == "close" else 1)

    run(scenario())


def test_interim_1xx_responses_are_skipped() -> None:
    raw = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 202 Accepted\r\nContent-Length: 4\r\n\r\nlate"
    )

    async def scenario() -> None:
        async with RawServer(answer(raw)) as server, LenderClient(timeout=2.0) as client:
            for _ in range(2):
                response = await post(client, server.url)
                assert (response.status_code, response.content) == (202, b"late")
                assert "link" not in response.headers
            assert server.accepts == 1

    run(scenario())


def test_no_content_answers_have_no_body_and_keep_the_connection() -> None:
    async def scenario() -> None:
        async with serving(answer(b"HTTP/1.1 204 No Content\r\n\r\n")) as (
            server,
            client,
        ):
            for _ in range(3):
                response = await post(client, server.url)
                assert (response.status_code, response.content) == (204, b"")
            assert server.accepts == 1

    run(scenario())


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1), id="declared"
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n" % (64 * 1024)
            + b"x" * (64 * 1024)
            + b"\r\n",
            id="chunked",
        ),
        pytest.param(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * (64 * 1024), id="until-close"),
    ],
)
def test_an_oversize_body_is_a_protocol_error_and_closes(raw: bytes) -> None:
    async def respond(_s: RawServer, writer: asyncio.StreamWriter, _b: bytes, _n: int) -> bool:
        for _ in range(MAX_BODY // (64 * 1024) + 2 if b"Content-Length" not in raw else 1):
            writer.write(raw if _ == 0 else raw[raw.index(b"\r\n\r\n") + 4 :])
            await writer.drain()
        await asyncio.sleep(5)
        return True

    async def scenario() -> None:
        async with RawServer(respond) as server, LenderClient(timeout=3.0) as client:
            with pytest.raises(httpx.RemoteProtocolError, match="exceeds"):
                await post(client, server.url)
            assert client.connections == 0

    run(scenario())


def test_a_body_at_the_limit_is_accepted() -> None:
    body = b"y" * MAX_BODY

    async def scenario() -> None:
        raw = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        async with RawServer(answer(raw)) as server, LenderClient(timeout=3.0) as client:
            assert (await post(client, server.url)).content == body

    run(scenario())


@pytest.mark.parametrize(
    "raw",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 2xx OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["status-line", "status-code", "two-lengths", "bad-chunk"],
)
def test_a_malformed_response_is_a_remote_protocol_error(raw: bytes) -> None:
    async def scenario() -> None:
        async with RawServer(answer(raw)) as server, LenderClient(timeout=2.0) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await post(client, server.url)
            assert client.connections == 0

    run(scenario())


@pytest.mark.parametrize("pause", [0.0, 0.02], ids=["same-packet", "while-idle"])
def test_extra_bytes_after_a_response_stop_the_connection_being_reused(pause: float) -> None:
    async def respond(_s: RawServer, writer: asyncio.StreamWriter, _b: bytes, _n: int) -> bool:
        writer.write(OK)
        if pause:
            await writer.drain()
            await asyncio.sleep(pause)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        return False

    async def scenario() -> None:
        async with serving(respond) as (server, client):
            assert (await post(client, server.url)).content == b"ok"
            await asyncio.sleep(0.05)
            assert (await post(client, server.url)).content == b"ok"
            assert server.accepts == 2

    run(scenario())


# -- timeouts, cancellation, connect errors --------------------------------------------------


def test_a_slow_body_times_out_as_read_timeout_and_is_not_reused() -> None:
    async def trickle(_s: RawServer, writer: asyncio.StreamWriter, _b: bytes, n: int) -> bool:
        if n == 0:
            writer.write(OK)
            return False
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for _ in range(100):
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.05)
        return False

    async def scenario() -> None:
        async with RawServer(trickle) as server, LenderClient(timeout=0.3) as client:
            await post(client, server.url)
            with pytest.raises(httpx.ReadTimeout) as caught:
                await post(client, server.url)
            assert isinstance(caught.value, httpx.TimeoutException)
            assert client.connections == 0
            assert (await post(client, server.url)).content == b"ok"  # on a new connection
            assert server.accepts == 2

    run(scenario())


def test_cancelling_mid_read_closes_the_connection() -> None:
    """Cancelled after the status line arrived: that connection must never carry another
    request (its rest of the response would be read as the next answer)."""

    async def respond(s: RawServer, writer: asyncio.StreamWriter, _b: bytes, _n: int) -> bool:
        if s.requests <= 2:  # the first two requests get a slow answer, the third a quick one
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nst")
            await writer.drain()
            await asyncio.sleep(0.3)
            writer.write(b"ale!")
            return False
        writer.write(OK)
        return False

    async def scenario() -> None:
        async with RawServer(respond) as server, LenderClient(timeout=2.0) as client:
            task = asyncio.ensure_future(post(client, server.url))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert client.connections == 0
            with pytest.raises(TimeoutError):  # the fan-out's own deadline: wait_for
                await asyncio.wait_for(post(client, server.url), 0.1)
            assert client.connections == 0
            assert (await post(client, server.url)).content == b"ok"
            assert server.accepts == 3

    run(scenario())


def test_cancelling_a_pool_waiter_passes_the_slot_on() -> None:
    async def slow(_s: RawServer, writer: asyncio.StreamWriter, _b: bytes, _n: int) -> bool:
        await asyncio.sleep(0.05)
        writer.write(OK)
        return False

    async def scenario() -> None:
        async with serving(slow, max_connections=1, timeout=1.0) as (server, client):
            # Cancelled while still queued: they leave the queue.
            tasks = [asyncio.ensure_future(post(client, server.url)) for _ in range(4)]
            await asyncio.sleep(0.01)
            tasks[1].cancel()
            tasks[2].cancel()
            done = await asyncio.gather(*tasks, return_exceptions=True)
            assert [type(d).__name__ for d in done] == [
                "LenderResponse",
                "CancelledError",
                "CancelledError",
                "LenderResponse",
            ]
            # Cancelled just after being woken (the slot was handed to it, it has not run
            # yet): the wake-up must go to the next waiter, or that one waits forever.
            later: list[asyncio.Future[Any]] = []

            async def first() -> Any:
                response = await post(client, server.url)  # its release wakes later[0]
                later[0].cancel()
                return response

            head = asyncio.ensure_future(first())
            await asyncio.sleep(0.01)
            later.extend(asyncio.ensure_future(post(client, server.url)) for _ in range(2))
            done = await asyncio.gather(head, *later, return_exceptions=True)
            assert [type(d).__name__ for d in done] == [
                "LenderResponse",
                "CancelledError",
                "LenderResponse",
            ]
            assert server.accepts == 1

    run(scenario())


def test_a_refused_connection_is_a_connect_error_and_frees_its_slot() -> None:
    async def scenario() -> None:
        async with RawServer(answer(OK)) as server:
            port = server.port
        await asyncio.sleep(0.01)
        async with LenderClient(timeout=2.0, max_connections=1) as client:
            for _ in range(2):
                with pytest.raises(httpx.ConnectError):
                    await post(client, f"http://127.0.0.1:{port}/")
            assert client.connections == 0

    run(scenario())


def test_requests_that_would_corrupt_the_framing_are_refused() -> None:
    async def scenario() -> None:
        async with LenderClient(timeout=1.0) as client:
            with pytest.raises(ValueError, match="CR or LF"):
                await client.post("http://127.0.0.1:9/", content=b"", headers={"X": "a\r\nB: c"})
            with pytest.raises(ValueError, match="itself"):
                await client.post(
                    "http://127.0.0.1:9/", content=b"", headers={"content-length": "0"}
                )
            with pytest.raises(httpx.UnsupportedProtocol):
                await client.post("ftp://127.0.0.1/", content=b"", headers={})
        with pytest.raises(RuntimeError, match="closed"):
            await client.post("http://127.0.0.1:9/", content=b"", headers={})

    run(scenario())


def test_aclose_closes_idle_connections() -> None:
    async def scenario() -> None:
        async with RawServer(answer(OK)) as server:
            client = LenderClient(timeout=2.0)
            await post(client, server.url)
            await client.aclose()
            await asyncio.sleep(0.05)
            assert server.closed_by_client == 1
            assert client.connections == 0

    run(scenario())


def test_keep_alive_and_chunked_work_on_uvloop() -> None:
    """The API server runs uvloop; the protocol must not depend on the stock loop."""
    raw = frame(b"0123456789" * 50, "chunked", [7, 300])

    async def scenario() -> None:
        async with RawServer(answer(raw)) as server, LenderClient(timeout=2.0) as client:
            for _ in range(5):
                assert (await post(client, server.url)).content == b"0123456789" * 50
            assert server.accepts == 1

    uvloop.run(scenario())


# -- https -----------------------------------------------------------------------------------


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for `localhost` (cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_sends_sni_verifies_the_certificate_and_keeps_alive(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    names: list[str | None] = []

    def sni(_sock: Any, name: str | None, _ctx: Any) -> None:
        names.append(name)

    server_context.sni_callback = sni

    async def scenario() -> None:
        async with RawServer(answer(OK), tls=server_context) as server:
            url = f"https://localhost:{server.port}/quote"
            trusted = ssl.create_default_context(cafile=str(cert))
            async with LenderClient(timeout=3.0, ssl_context=trusted) as client:
                for _ in range(3):
                    assert (await post(client, url)).content == b"ok"
                assert server.accepts == 1
                assert names == ["localhost"]
            async with LenderClient(timeout=3.0) as untrusting:  # system CAs only
                with pytest.raises(httpx.ConnectError):
                    await post(untrusting, url)

    run(scenario())
