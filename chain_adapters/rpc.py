"""A minimal JSON-RPC client for probes that must not depend on a Web3 instance.

Used where a full web3 stack would hide the failure we want to report (readiness probes, devnet
start-up) and by the verifier-style callers that want one request with a hard timeout.
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx

_ids = itertools.count(1)


class RPCCallError(Exception):
    """The endpoint answered with a JSON-RPC error object."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        self.method = method
        self.code = error.get("code")
        self.data = error.get("data")
        super().__init__(f"{method}: {error.get('message', error)}")


def rpc_call(
    url: str, method: str, params: list[Any] | None = None, *, timeout: float = 5.0
) -> Any:
    """POST one JSON-RPC request; raise httpx errors for transport problems."""
    payload = {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": params or []}
    response = httpx.post(url, json=payload, timeout=timeout)
    response.raise_for_status()
    body = response.json()
    if "error" in body:
        raise RPCCallError(method, body["error"])
    return body["result"]


def fetch_chain_id(url: str, *, timeout: float = 5.0) -> int:
    return int(rpc_call(url, "eth_chainId", timeout=timeout), 16)
