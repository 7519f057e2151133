"""A lean HTTP/1.1 POST client with a keep-alive pool, for the lender fan-out.

Why not httpx or aiohttp: every credit request fans out ~20 small signed POSTs, and the box is
CPU-bound with 2 cores. py-spy showed the httpx client layer (request building, cookies, auth
and redirect wrappers) plus aiohttp's `ClientSession` costing ~1.4 ms of CPU per lender call,
about a third of the API's CPU. The fan-out needs none of that machinery: one method (POST), a
bytes body, no cookies, redirects, auth, proxies or decompression. So this module is an asyncio
`Protocol` per connection and httptools' C parser (llhttp, already installed for uvicorn), and
nothing else. On `scripts/bench/lender_http.py` a call costs ~0.07 ms of client CPU, system
calls included, against ~0.5-0.7 ms through httpx over aiohttp.

What callers see is what `sources.traditional._exchange` already used from httpx:
`await client.post(url, content=..., headers=...)` giving `.status_code`, `.content`, `.headers`
and `.json()`, and failures raised as httpx's exception types (`httpx.TimeoutException`
subclasses for timeouts, other `httpx.TransportError`s for the wire), so callers do not change.

Rules this client keeps, and why:

* One deadline (`timeout`) covers the whole exchange: waiting for a pool slot, connecting (TLS
  included), writing and reading. The fan-out has one budget per lender, not one per phase.
  Which phase was running picks the exception: `PoolTimeout`, `ConnectTimeout`, `ReadTimeout`.
* A connection that saw a cancel, a timeout, a parse error, an over-long body or anything
  unexpected is closed, never reused: its framing can no longer be trusted.
* Keep-alive: a connection goes back to the pool only when the response was fully read and the
  server allowed it (`Connection: close` and HTTP/1.0 without keep-alive are honoured). Idle
  connections expire after `keepalive_seconds`, and one the server closes while idle leaves the
  pool (and frees its slot) at once.
* Stale keep-alive retry: a server may close an idle connection just as we send on it. We retry
  ONCE, on a fresh connection, only when (a) the connection was a reused idle one and (b) it
  closed before a single byte of the response arrived (the "stale keep-alive" rule browsers
  use for reused sockets; aiohttp and Go's net/http apply it to idempotent methods only, because
  of the next point). A POST is not idempotent: in the rare case that the server read the
  request and then closed without answering, the lender gets it twice. The retry is
  byte-identical (same event `id`, same signature), so a lender can recognise it, and credagg
  uses only the one answer it receives. A fresh connection is never retried.
* Bodies: Content-Length, chunked, or read-until-close; 1xx interim responses (100-continue,
  103) are skipped; a body over `max_body` (1 MiB) is a `RemoteProtocolError`, checked on the
  declared length first so we do not read it.
* The pool is bounded: at most `max_connections` connections in total (open or opening), shared
  by all hosts; callers beyond that wait in FIFO order. When the pool is full of idle connections
  to other hosts, the oldest idle one is closed to make room.
* https uses one `ssl.create_default_context()` (built once: it costs milliseconds) with SNI and
  certificate checks against the URL's host.
* Request bodies are small (a few hundred bytes), so a write is one `transport.write` without
  awaiting `drain()`: the kernel buffer takes it whole.
* Only the `Host` and `Content-Length` headers are added (plus `User-Agent`); no
  `Accept-Encoding`, so servers answer uncompressed and `.content` is the body as sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol, cast
from urllib.parse import quote, urlsplit

import httptools
import httpx

#: Largest response body we read (bytes); larger is a protocol error and the connection closes.
MAX_BODY = 1024 * 1024
#: Idle keep-alive connections older than this are closed instead of reused (seconds). Shorter
#: than common server idle timeouts would be safer still, but the stale retry covers the race.
KEEPALIVE_SECONDS = 30.0
USER_AGENT = "credagg-lender-client"
#: Headers this client writes itself; a caller passing them would desync the framing.
_RESERVED = frozenset({"host", "content-length", "transfer-encoding", "connection"})

_POOL, _CONNECT, _READ = 0, 1, 2
_TIMEOUTS: tuple[type[httpx.TimeoutException], ...] = (
    httpx.PoolTimeout,
    httpx.ConnectTimeout,
    httpx.ReadTimeout,
)


class LenderHeaders(Mapping[str, str]):
    """Response headers with case-insensitive lookup; repeated headers are joined by ", "."""

    __slots__ = ("_items",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        items: dict[str, str] = {}
        for name, value in raw:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            items[key] = f"{items[key]}, {text}" if key in items else text
        self._items = items

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


class LenderResponse:
    """The parts of a response the fan-out uses. Headers are decoded only when asked for."""

    __slots__ = ("_headers", "_raw_headers", "content", "status_code")

    def __init__(
        self, status_code: int, raw_headers: list[tuple[bytes, bytes]], content: bytes
    ) -> None:
        self.status_code = status_code
        self.content = content
        self._raw_headers = raw_headers
        self._headers: LenderHeaders | None = None

    @property
    def headers(self) -> LenderHeaders:
        if self._headers is None:
            self._headers = LenderHeaders(self._raw_headers)
        return self._headers

    def json(self) -> Any:
        return json.loads(self.content)

    def __repr__(self) -> str:
        return f"<LenderResponse [{self.status_code}] {len(self.content)} bytes>"


class PostedResponse(Protocol):
    """What the fan-out reads from an answer; `httpx.Response` fits too."""

    @property
    def status_code(self) -> int: ...

    @property
    def content(self) -> bytes: ...


class LenderPoster(Protocol):
    """The client type the lender sources need: `LenderClient`, or an `httpx.AsyncClient` (which
    tests and tools may still pass), so annotations need not name either."""

    async def post(
        self, url: str, *, content: bytes, headers: Mapping[str, str]
    ) -> PostedResponse: ...


@dataclass(frozen=True, slots=True)
class _Target:
    """A URL resolved once into what a request needs (cached: lenders are a small set)."""

    key: tuple[str, str, int]
    host: str
    port: int
    tls: bool
    #: The request line, Host and User-Agent, ready to prepend.
    prefix: str


@lru_cache(maxsize=1024)
def _target(url: str) -> _Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise httpx.UnsupportedProtocol(f"invalid URL {url!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise httpx.UnsupportedProtocol(f"URL {url!r} is not http(s)://host/...")
    tls = scheme == "https"
    host = parts.hostname.encode("idna").decode("ascii")
    default = 443 if tls else 80
    port = port or default
    shown = f"[{host}]" if ":" in host else host
    if port != default:
        shown = f"{shown}:{port}"
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=~")
    if parts.query:
        path = f"{path}?{quote(parts.query, safe='/%:@!$&()*+,;=?~')}"
    prefix = f"POST {path} HTTP/1.1\r\nHost: {shown}\r\nUser-Agent: {USER_AGENT}\r\n"
    return _Target((scheme, host, port), host, port, tls, prefix)


def _encode(target: _Target, headers: Mapping[str, str], content: bytes) -> bytes:
    """The request bytes. Refuses CR/LF inside headers (header injection) and the headers
    this client owns (a second Content-Length would desync the connection)."""
    head = [target.prefix]
    for name, value in headers.items():
        if name.lower() in _RESERVED:
            raise ValueError(f"header {name!r} is set by LenderClient itself")
        head.append(f"{name}: {value}\r\n")
    head.append(f"Content-Length: {len(content)}\r\n\r\n")
    text = "".join(head)
    # One line per header, plus the prefix's three (request line, Host, User-Agent) and the
    # blank line: any other CR or LF came from inside a name or value.
    if text.count("\n") != len(head) + 3 or text.count("\r") != len(head) + 3:
        raise ValueError("header names and values must not contain CR or LF")
    return text.encode("latin-1") + content


class _Disconnected(Exception):
    """The connection closed before the response was complete (internal: `post` maps it)."""

    def __init__(self, cause: BaseException | None, received: int) -> None:
        super().__init__(cause)
        self.cause = cause
        self.received = received


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection and its response parser. At most one exchange at a time;
    `waiter` is that exchange's future, resolved by the parser callbacks or the close."""

    def __init__(self, client: LenderClient, key: tuple[str, str, int]) -> None:
        self.client = client
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False
        #: In the pool's idle deque.
        self.idle = False
        self.idle_since = 0.0
        #: Holds one of the pool's `max_connections` slots.
        self.counted = True
        self._reset()

    def _reset(self) -> None:
        self.received = 0
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.size = 0
        self.headers_done = False
        self.framed = False
        self.informational = False
        self.complete = False
        self.keep_alive = False
        self.error: httpx.TransportError | None = None

    def begin(self, waiter: asyncio.Future[None], request: bytes) -> None:
        """Start an exchange: the caller then awaits `waiter`."""
        self._reset()
        self.waiter = waiter
        assert self.transport is not None
        self.transport.write(request)

    def usable(self) -> bool:
        """Still open: not closed, and no close (our EOF handling) under way."""
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not a subclass of asyncio.Transport, so no check).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            # Bytes nobody asked for (while idle, or after a complete response): the framing of
            # whatever comes next cannot be trusted.
            self.keep_alive = False
            self.abort()
            return
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the server switched protocols (upgrade)"))
        except httptools.HttpParserError as exc:
            self._fail(self.error or httpx.RemoteProtocolError(f"malformed response: {exc}"))

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost settles any exchange

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            if exc is None and self.headers_done and not self.framed and not self.informational:
                # A body delimited by the close itself (no Content-Length, not chunked).
                self.complete = True
                self.keep_alive = False
                waiter.set_result(None)
            else:
                waiter.set_exception(_Disconnected(exc, self.received))
        if self.idle:
            self.client._lost_idle(self)

    # -- httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:  # a second response to one request: never reuse this connection
            self.keep_alive = False
            self.error = httpx.RemoteProtocolError("unexpected data after the response")
            raise self.error
        self.headers = []
        self.headers_done = False
        self.framed = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        lowered = name.lower()
        if lowered == b"content-length":
            self.framed = True
            if value.strip().isdigit() and int(value) > self.client.max_body:
                self.error = httpx.RemoteProtocolError(
                    f"response body of {int(value)} bytes exceeds {self.client.max_body}"
                )
                raise self.error
        elif lowered == b"transfer-encoding":
            self.framed = True

    def on_headers_complete(self) -> None:
        self.headers_done = True
        self.status = self.parser.get_status_code()
        self.informational = 100 <= self.status < 200
        if not self.informational:
            self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.client.max_body:
            self.error = httpx.RemoteProtocolError(
                f"response body exceeds {self.client.max_body} bytes"
            )
            raise self.error
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        if self.informational:  # 100 Continue, 103 Early Hints: the real answer follows
            self.informational = False
            return
        self.complete = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: httpx.TransportError) -> None:
        self.keep_alive = False
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.abort()


class LenderClient:
    """A keep-alive pool of HTTP/1.1 connections, keyed by (scheme, host, port), bounded to
    `max_connections` in total. Belongs to the event loop it is first used on (like any
    asyncio object), so keep one per loop."""

    def __init__(
        self,
        *,
        timeout: float,
        max_connections: int = 100,
        keepalive_seconds: float = KEEPALIVE_SECONDS,
        max_body: int = MAX_BODY,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.timeout = timeout
        self.max_connections = max_connections
        self.keepalive_seconds = keepalive_seconds
        self.max_body = max_body
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], deque[_Connection]] = {}
        self._conns: set[_Connection] = set()
        self._total = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    @property
    def connections(self) -> int:
        """Connections open or opening now (what `max_connections` bounds)."""
        return self._total

    async def post(self, url: str, *, content: bytes, headers: Mapping[str, str]) -> LenderResponse:
        """POST `content` to `url` and read the whole answer, within `self.timeout`.

        Raises httpx's types so callers written for httpx need no change: `PoolTimeout`,
        `ConnectTimeout` or `ReadTimeout` (all `httpx.TimeoutException`) by the phase the
        deadline hit; `ConnectError`; `RemoteProtocolError` (malformed, oversize, or cut short);
        `ReadError` (reset mid-answer); `UnsupportedProtocol` (not an http(s) URL). A header
        containing CR/LF, or one this client sets itself, is a programming error: ValueError.
        """
        if self._closed:
            raise RuntimeError("this LenderClient has been closed")
        target = _target(url)
        request = _encode(target, headers, content)
        phase = _POOL
        try:
            async with asyncio.timeout(self.timeout):
                for attempt in (0, 1):
                    phase = _POOL
                    conn = None if attempt else self._take_idle(target.key)
                    reused = conn is not None
                    if conn is None:
                        conn = await self._reserve(target.key, reuse=not attempt)
                        reused = conn is not None
                    if conn is None:
                        phase = _CONNECT
                        conn = await self._connect(target)
                    phase = _READ
                    try:
                        return await self._exchange(conn, request)
                    except _Disconnected as exc:
                        if attempt == 0 and reused and exc.received == 0:
                            continue  # stale keep-alive: see the module docstring
                        if isinstance(exc.cause, OSError):
                            raise httpx.ReadError(f"connection failed: {exc.cause!r}") from exc
                        raise httpx.RemoteProtocolError(
                            "server closed the connection before the response was complete"
                        ) from exc
        except TimeoutError as exc:
            raise _TIMEOUTS[phase](f"no answer within {self.timeout} s") from exc
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def aclose(self) -> None:
        """Close every connection, idle or busy; later `post`s raise RuntimeError."""
        self._closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(RuntimeError("this LenderClient has been closed"))
        for conn in list(self._conns):
            self._drop(conn)
        self._idle.clear()

    async def __aenter__(self) -> LenderClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- one exchange ------------------------------------------------------------------------

    async def _exchange(self, conn: _Connection, request: bytes) -> LenderResponse:
        if not conn.usable():  # closed by the server after we took it from the pool
            self._drop(conn)
            raise _Disconnected(None, 0)
        waiter = asyncio.get_running_loop().create_future()
        try:
            conn.begin(waiter, request)
            await waiter
        except BaseException:
            # Cancelled, timed out, or failed mid-exchange: the connection's framing is lost.
            self._drop(conn)
            raise
        conn.waiter = None
        response = LenderResponse(conn.status, conn.headers, b"".join(conn.body))
        if conn.keep_alive and conn.usable() and not self._closed:
            conn.idle = True
            conn.idle_since = time.monotonic()
            self._idle.setdefault(conn.key, deque()).append(conn)
            self._wake()
        else:
            self._drop(conn)
        return response

    # -- the pool ----------------------------------------------------------------------------

    def _take_idle(self, key: tuple[str, str, int]) -> _Connection | None:
        """The most recently used live idle connection to `key`, if any (no await)."""
        idle = self._idle.get(key)
        if not idle:
            return None
        oldest_ok = time.monotonic() - self.keepalive_seconds
        while idle:
            conn = idle.pop()
            conn.idle = False
            if conn.idle_since >= oldest_ok and conn.usable():
                return conn
            self._drop(conn)
        return None

    async def _reserve(self, key: tuple[str, str, int], *, reuse: bool) -> _Connection | None:
        """Wait for an idle connection to `key` (if `reuse`) or a free slot. Returns the idle
        connection, or None when a slot is now reserved for the caller to connect."""
        queued = False
        while True:
            if self._closed:
                raise RuntimeError("this LenderClient has been closed")
            if reuse:
                conn = self._take_idle(key)
                if conn is not None:
                    return conn
            # FIFO: newcomers do not overtake waiters for a slot.
            may_take = queued or not self._waiters
            if may_take and (self._total < self.max_connections or self._evict_one()):
                self._total += 1
                return None
            waiter = asyncio.get_running_loop().create_future()
            if queued:
                self._waiters.appendleft(waiter)  # woken but beaten to it: keep our place
            else:
                self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    self._wake()  # we were woken, but will not use it: pass it on
                else:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)
                raise
            queued = True

    def _evict_one(self) -> bool:
        """Close the oldest idle connection (to any host) to free its slot."""
        oldest: deque[_Connection] | None = None
        for idle in self._idle.values():
            if idle and (oldest is None or idle[0].idle_since < oldest[0].idle_since):
                oldest = idle
        if oldest is None:
            return False
        conn = oldest.popleft()
        conn.idle = False
        self._drop(conn, wake=False)
        return True

    async def _connect(self, target: _Target) -> _Connection:
        """Open a connection into the slot `_reserve` reserved (released again on failure)."""
        loop = asyncio.get_running_loop()
        context: ssl.SSLContext | None = None
        if target.tls:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        try:
            _, conn = await loop.create_connection(
                lambda: _Connection(self, target.key),
                target.host,
                target.port,
                ssl=context,
                server_hostname=target.host if context is not None else None,
            )
        except BaseException as exc:
            self._total -= 1
            self._wake()
            if isinstance(exc, OSError):  # refused, unreachable, DNS, TLS (SSLError)
                raise httpx.ConnectError(
                    f"cannot connect to {target.host}:{target.port}: {exc}"
                ) from exc
            raise
        if self._closed:
            self._drop(conn)
            raise RuntimeError("this LenderClient has been closed")
        self._conns.add(conn)
        return conn

    def _lost_idle(self, conn: _Connection) -> None:
        """An idle connection closed (usually the server's idle timeout): free its slot now."""
        conn.idle = False
        idle = self._idle.get(conn.key)
        if idle is not None:
            with contextlib.suppress(ValueError):
                idle.remove(conn)
        self._drop(conn)

    def _drop(self, conn: _Connection, *, wake: bool = True) -> None:
        """Close a connection and give back its slot (idempotent)."""
        conn.abort()
        self._conns.discard(conn)
        if conn.counted:
            conn.counted = False
            self._total -= 1
            if wake:
                self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
