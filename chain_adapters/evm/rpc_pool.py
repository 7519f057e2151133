"""Several RPC URLs per chain behind one web3 provider: failover, stale-head skipping, retries.

Why a provider and not code in callers: every request of the adapter (calls, receipts, logs,
broadcasts) gets the same treatment without anyone remembering to wrap it, and web3's own
middleware (formatting, validation) keeps working on top. The provider owns one `HTTPProvider`
per URL (with web3's built-in retry switched off, so there is exactly one retry policy: ours).

Per request, URLs are tried in config order, skipping those that recently failed (cool-down) or
whose head is stale: more than `max_head_lag` blocks behind the best head seen, or not moved for
`stall_factor * block_time` while another URL's head moved. If every preferred URL fails, the
skipped ones are tried too before giving up on the round, since a lagging answer beats none.

A round in which every URL failed is retried with exponential backoff *only* if at least one
failure was transient (listed below). Anything else — an HTTP 401, a non-JSON body — is a
configuration problem that retrying cannot fix. JSON-RPC errors that are not listed (reverts,
"nonce too low") are answers, not failures, and go back to web3 untouched. When retries are
exhausted the caller gets `RPCUnavailable` naming the chain and every URL.

Each URL's chain id is checked the first time it is used and again after every failure, so a URL
that was down at `connect()`, or comes back after an outage pointing at another network, is
refused rather than silently used.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)
from web3 import HTTPProvider
from web3.providers.base import JSONBaseProvider
from web3.types import RPCEndpoint, RPCResponse

from chain_adapters.exceptions import ChainIdMismatch, RPCUnavailable

logger = logging.getLogger(__name__)

# HTTP statuses worth retrying: timeouts, rate limits and server-side trouble.
TRANSIENT_HTTP_STATUS: frozenset[int] = frozenset({408, 425, 429, 500, 502, 503, 504})
# JSON-RPC error codes worth retrying elsewhere or later. -32005 is EIP-1474's "limit exceeded"
# (Infura, geth's rate limiter); 429 is used by several hosted providers in the JSON body.
TRANSIENT_RPC_CODES: frozenset[int] = frozenset({-32005, 429})


def _is_log_range_refusal(method: str, error: Mapping[str, Any]) -> bool:
    """Infura answers a too-large `eth_getLogs` with -32005 "query returned more than 10000
    results": the same code as its rate limiter, but retrying the same range never helps."""
    return method == "eth_getLogs" and "more than" in str(error.get("message", "")).lower()


# Transport exceptions worth retrying (requests wraps socket errors in these).
TRANSIENT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


@dataclass(frozen=True)
class PoolPolicy:
    """Knobs of the pool. Defaults suit a public chain; tests shrink the delays."""

    request_timeout: float = 10.0
    max_rounds: int = 4  # rounds over all URLs before RPCUnavailable
    backoff_initial: float = 0.25  # seconds before the 2nd round; doubles each round
    backoff_max: float = 4.0
    cooldown: float = 15.0  # seconds a failed URL is skipped (unless nothing else works)
    max_head_lag: int = 5  # blocks
    stall_factor: float = 10.0  # "head not moved for stall_factor * block_time" is stale
    head_refresh: float | None = None  # seconds between head probes; None = block_time


@dataclass
class EndpointStatus:
    """What the pool knows about one URL (also exposed for health endpoints and tests)."""

    url: str
    head: int | None = None
    head_moved_at: float = 0.0
    down_until: float = 0.0
    failures: int = 0
    last_error: str = ""
    chain_id_checked: bool = False


@dataclass
class _Endpoint:
    status: EndpointStatus
    provider: HTTPProvider


class _EndpointFailed(Exception):
    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass
class _RoundFailed(Exception):
    errors: list[str] = field(default_factory=list)
    transient: bool = False

    def __str__(self) -> str:
        return "; ".join(self.errors)


class FailoverHTTPProvider(JSONBaseProvider):
    """A web3 provider over several HTTP URLs of one chain."""

    def __init__(
        self,
        *,
        chain_name: str,
        chain_id: int,
        urls: Sequence[str],
        block_time: float,
        policy: PoolPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        if not urls:
            raise ValueError("at least one RPC URL is needed")
        self.chain_name = chain_name
        self.chain_id = chain_id
        self.block_time = block_time
        self.policy = policy or PoolPolicy()
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._last_refresh = float("-inf")
        self._endpoints = [
            _Endpoint(
                status=EndpointStatus(url=url),
                provider=HTTPProvider(
                    url,
                    request_kwargs={"timeout": self.policy.request_timeout},
                    exception_retry_configuration=None,
                ),
            )
            for url in urls
        ]

    def __str__(self) -> str:
        return f"FailoverHTTPProvider[{self.chain_name}]({', '.join(self.urls)})"

    @property
    def urls(self) -> list[str]:
        return [ep.status.url for ep in self._endpoints]

    def statuses(self) -> list[EndpointStatus]:
        with self._lock:
            return [EndpointStatus(**vars(ep.status)) for ep in self._endpoints]

    # -- web3 provider interface --------------------------------------------------------------

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        retrying = Retrying(
            stop=stop_after_attempt(self.policy.max_rounds),
            wait=wait_exponential(
                multiplier=self.policy.backoff_initial,
                min=self.policy.backoff_initial,
                max=self.policy.backoff_max,
            ),
            retry=retry_if_exception(lambda e: isinstance(e, _RoundFailed) and e.transient),
            sleep=self._sleep,
            reraise=False,
        )
        try:
            result: RPCResponse = retrying(self._round, method, params)
            return result
        except RetryError as exc:
            failure = exc.last_attempt.exception()
            raise self._unavailable(str(failure)) from None
        except _RoundFailed as exc:  # not transient: no retry
            raise self._unavailable(str(exc)) from None

    def is_connected(self, show_traceback: bool = False) -> bool:
        return any(ep.provider.is_connected() for ep in self._endpoints)

    # -- chain id -----------------------------------------------------------------------------

    def check_chain_ids(self) -> dict[str, int | None]:
        """eth_chainId of every reachable URL (None if unreachable); mismatch -> ChainIdMismatch.

        Raises RPCUnavailable if no URL answers at all.
        """
        seen: dict[str, int | None] = {}
        errors: list[str] = []
        for ep in self._endpoints:
            try:
                seen[ep.status.url] = self._verify_chain_id(ep)
            except _EndpointFailed as exc:
                seen[ep.status.url] = None
                errors.append(f"{ep.status.url}: {exc}")
                self._mark_failed(ep, str(exc))
        if all(value is None for value in seen.values()):
            raise self._unavailable("; ".join(errors))
        return seen

    def _verify_chain_id(self, ep: _Endpoint) -> int:
        response = self._raw(ep, RPCEndpoint("eth_chainId"), [])
        if "error" in response:
            raise _EndpointFailed(f"eth_chainId: {response['error']}", transient=False)
        actual = int(response["result"], 16)
        if actual != self.chain_id:
            raise ChainIdMismatch(
                chain=self.chain_name, url=ep.status.url, expected=self.chain_id, actual=actual
            )
        with self._lock:
            ep.status.chain_id_checked = True
        return actual

    # -- one round over the URLs -------------------------------------------------------------

    def _round(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        self._refresh_heads()
        failure = _RoundFailed()
        for ep in self._ordered():
            try:
                if not ep.status.chain_id_checked:
                    self._verify_chain_id(ep)
                response = self._raw(ep, method, params)
                error = response.get("error")
                if isinstance(error, dict) and error.get("code") in TRANSIENT_RPC_CODES:
                    if _is_log_range_refusal(method, error):
                        # An answer ("ask for a smaller range"), not an outage: the caller shrinks.
                        self._mark_ok(ep, method, response)
                        return response
                    raise _EndpointFailed(f"{method}: {error}", transient=True)
            except _EndpointFailed as exc:
                self._mark_failed(ep, str(exc))
                failure.errors.append(f"{ep.status.url}: {exc}")
                failure.transient = failure.transient or exc.transient
                logger.warning(
                    "[%s] %s via %s failed (%s); trying the next URL",
                    self.chain_name,
                    method,
                    ep.status.url,
                    exc,
                )
                continue
            self._mark_ok(ep, method, response)
            return response
        raise failure

    def _raw(self, ep: _Endpoint, method: RPCEndpoint, params: Any) -> RPCResponse:
        """One HTTP request to one URL; transport problems become _EndpointFailed."""
        try:
            return ep.provider.make_request(method, params)
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            raise _EndpointFailed(
                f"HTTP {status}", transient=status in TRANSIENT_HTTP_STATUS
            ) from exc
        except TRANSIENT_EXCEPTIONS as exc:
            raise _EndpointFailed(f"{type(exc).__name__}: {exc}", transient=True) from exc
        except (requests.RequestException, ValueError) as exc:  # bad URL, non-JSON body
            raise _EndpointFailed(f"{type(exc).__name__}: {exc}", transient=False) from exc

    def _unavailable(self, last_error: str) -> RPCUnavailable:
        return RPCUnavailable(chain=self.chain_name, urls=self.urls, last_error=last_error)

    # -- health bookkeeping -------------------------------------------------------------------

    def _ordered(self) -> list[_Endpoint]:
        """Healthy URLs in config order, then the rest (soonest out of cool-down first)."""
        now = self._clock()
        with self._lock:
            preferred = [ep for ep in self._endpoints if self._usable(ep, now)]
            rest = sorted(
                (ep for ep in self._endpoints if ep not in preferred),
                key=lambda ep: ep.status.down_until,
            )
        return preferred + rest

    def _usable(self, ep: _Endpoint, now: float) -> bool:
        if ep.status.down_until > now:
            return False
        return not self._stale(ep, now)

    def _stale(self, ep: _Endpoint, now: float) -> bool:
        live = [
            e for e in self._endpoints if e.status.head is not None and e.status.down_until <= now
        ]
        if ep.status.head is None or len(live) < 2:
            return False
        best = max(e.status.head for e in live if e.status.head is not None)
        if best - ep.status.head > self.policy.max_head_lag:
            return True
        stall = self.policy.stall_factor * self.block_time
        stalled = now - ep.status.head_moved_at > stall
        others_moving = any(now - e.status.head_moved_at <= stall for e in live if e is not ep)
        return stalled and others_moving and ep.status.head < best

    def _mark_failed(self, ep: _Endpoint, error: str) -> None:
        with self._lock:
            ep.status.failures += 1
            ep.status.last_error = error
            ep.status.down_until = self._clock() + self.policy.cooldown
            ep.status.chain_id_checked = False  # whatever answers next time is checked again

    def _mark_ok(self, ep: _Endpoint, method: RPCEndpoint, response: RPCResponse) -> None:
        with self._lock:
            ep.status.down_until = 0.0
            if method == "eth_blockNumber" and isinstance(response.get("result"), str):
                self._note_head(ep, int(response["result"], 16))

    def _note_head(self, ep: _Endpoint, head: int) -> None:
        if ep.status.head is None or head > ep.status.head:
            ep.status.head_moved_at = self._clock()
        if ep.status.head is None or head >= ep.status.head:
            ep.status.head = head

    def _refresh_heads(self) -> None:
        """Probe every URL's head, at most once per `head_refresh` (only if there is a choice)."""
        if len(self._endpoints) < 2:
            return
        interval = self.policy.head_refresh
        if interval is None:
            interval = self.block_time
        if self._clock() - self._last_refresh < interval:
            return
        if not self._refreshing.acquire(blocking=False):
            return  # another thread is probing; use what we know
        try:
            self._last_refresh = self._clock()
            for ep in self._endpoints:
                if ep.status.down_until > self._clock():
                    continue
                try:
                    response = self._raw(ep, RPCEndpoint("eth_blockNumber"), [])
                except _EndpointFailed as exc:
                    self._mark_failed(ep, str(exc))
                    continue
                if isinstance(response.get("result"), str):
                    with self._lock:
                        self._note_head(ep, int(response["result"], 16))
        finally:
            self._refreshing.release()
