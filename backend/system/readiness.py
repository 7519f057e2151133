"""Readiness: can this instance serve traffic right now?

Each component is probed concurrently in its own thread (the database driver, Redis and the
JSON-RPC probe are blocking calls), every probe has its own short timeout, and the whole check
has a hard deadline (`CREDAGG_READINESS_TIMEOUT`): a probe still running at the deadline is
reported as not ready instead of holding the orchestrator's probe hostage.

Components:
* `database`: `SELECT 1`, and the schema must not be behind this code's migrations;
* `broker`: Redis `PING`, or, on the embedded default, the SQLite broker file opens and reads;
* `chain:<name>` for each chain of the chains file: some RPC endpoint answers `eth_chainId`, and
  no endpoint answers with another chain id than the file says (that is a misconfiguration that
  would sign transactions for the wrong chain).

Reports name endpoints by scheme, host and port only: RPC URLs often carry an API key in their
path, and /readyz is served without authentication.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import redis
from sqlalchemy import Engine, text

from backend.config import Settings
from backend.migrate import MigrationScripts
from chain_adapters.registry import ChainConfig, ChainRegistry
from chain_adapters.rpc import RPCCallError, fetch_chain_id

Probe = Callable[[], dict[str, Any]]
_MAX_PROBE_THREADS = 32


class NotReady(Exception):
    """A probe reached its component and found it unusable; the message says why."""


@dataclass(frozen=True)
class ProbeOutcome:
    ok: bool
    info: dict[str, Any]
    error: str | None = None


def safe_endpoint(url: str) -> str:
    """`https://host:port` of a URL: no credentials, no path (API keys live there)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}:{parts.port}" if parts.port else f"{parts.scheme}://{host}"


def describe_error(exc: BaseException) -> str:
    """A one-line reason that leaks no URL path or credential."""
    if isinstance(exc, NotReady):
        return str(exc)
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, RPCCallError):
        return f"JSON-RPC error {exc.code}: {exc}"
    message = re.sub(r"(\w+://)[^\s'\"]+", lambda m: safe_endpoint(m.group(0)), str(exc))
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


class ReadinessChecker:
    """Built once per app from its settings, engine and chains; `check()` per request."""

    def __init__(
        self,
        *,
        settings: Settings,
        engine: Engine,
        chains: ChainRegistry | None,
        migrations: MigrationScripts | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.chains = chains
        self.migrations = migrations or MigrationScripts()

    async def check(self) -> tuple[bool, dict[str, dict[str, Any]]]:
        """Probe everything at once; return (all ready, per-component report)."""
        probes: dict[str, Probe] = {
            "database": self._probe_database,
            "broker": self._probe_broker,
        }
        for chain in self.chains or ():
            for index, url in enumerate(chain.rpc_urls):
                probes[f"chain:{chain.name}#{index}"] = _chain_probe(
                    url, timeout=self.settings.chain_probe_timeout
                )
        outcomes = await run_probes(probes, deadline=self.settings.readiness_timeout)
        components: dict[str, dict[str, Any]] = {
            "database": _component(outcomes["database"]),
            "broker": _component(outcomes["broker"]),
        }
        for chain in self.chains or ():
            endpoint_outcomes = [
                outcomes[f"chain:{chain.name}#{i}"] for i in range(len(chain.rpc_urls))
            ]
            components[f"chain:{chain.name}"] = _chain_component(chain, endpoint_outcomes)
        return all(c["ok"] for c in components.values()), components

    def _probe_database(self) -> dict[str, Any]:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            state = self.migrations.state(connection)
        info: dict[str, Any] = {
            "backend": self.engine.dialect.name,
            "revision": ",".join(state.current) or None,
        }
        if state.behind:
            raise NotReady(
                f"schema at revision {info['revision'] or 'none (empty database)'}, this code "
                f"needs {','.join(state.heads)}; run the migrations (`credagg migrate`)"
            )
        if not state.known:
            info["schema_ahead"] = True
        return info

    def _probe_broker(self) -> dict[str, Any]:
        timeout = self.settings.chain_probe_timeout
        if self.settings.redis_url:
            client = redis.Redis.from_url(
                self.settings.redis_url, socket_connect_timeout=timeout, socket_timeout=timeout
            )
            try:
                if not client.ping():
                    raise NotReady("Redis did not answer PING")
            finally:
                client.close()
            return {"kind": "redis"}
        path = self.settings.broker_db_path
        if not path.parent.is_dir():
            raise NotReady(f"data directory {path.parent} does not exist")
        connection = sqlite3.connect(path, timeout=timeout)
        try:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            connection.close()
        return {"kind": "sqlite"}


def _chain_probe(url: str, *, timeout: float) -> Probe:
    def probe() -> dict[str, Any]:
        return {"chain_id": fetch_chain_id(url, timeout=timeout)}

    return probe


async def run_probes(probes: Mapping[str, Probe], *, deadline: float) -> dict[str, ProbeOutcome]:
    """Run blocking probes concurrently; whatever has not finished by `deadline` s failed."""
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(
        max_workers=min(len(probes), _MAX_PROBE_THREADS) or 1, thread_name_prefix="readyz"
    )
    try:
        tasks = {
            name: asyncio.ensure_future(loop.run_in_executor(executor, probe))
            for name, probe in probes.items()
        }
        if tasks:
            await asyncio.wait(tasks.values(), timeout=deadline)
        outcomes: dict[str, ProbeOutcome] = {}
        for name, task in tasks.items():
            if not task.done():
                task.cancel()
                outcomes[name] = ProbeOutcome(False, {}, f"no answer within {deadline:g} s")
            elif task.exception() is not None:
                error = task.exception()
                assert error is not None
                outcomes[name] = ProbeOutcome(False, {}, describe_error(error))
            else:
                outcomes[name] = ProbeOutcome(True, task.result())
        return outcomes
    finally:
        # Threads still blocked in a probe finish on their own per-probe timeout.
        executor.shutdown(wait=False, cancel_futures=True)


def _component(outcome: ProbeOutcome) -> dict[str, Any]:
    report: dict[str, Any] = {"ok": outcome.ok, **outcome.info}
    if outcome.error:
        report["error"] = outcome.error
    return report


def _chain_component(chain: ChainConfig, outcomes: list[ProbeOutcome]) -> dict[str, Any]:
    expected = chain.chain_id
    up = 0
    errors: list[str] = []
    mismatches: list[str] = []
    for index, (url, outcome) in enumerate(zip(chain.rpc_urls, outcomes, strict=True)):
        where = f"endpoint #{index} ({safe_endpoint(url)})"
        if not outcome.ok:
            errors.append(f"{where}: {outcome.error}")
            continue
        actual = outcome.info["chain_id"]
        if actual != expected:
            mismatches.append(
                f"{where} reports chain id {actual} but the chains file expects {expected}"
            )
        else:
            up += 1
    report: dict[str, Any] = {
        "ok": up > 0 and not mismatches,
        "chain_id": expected,
        "endpoints_up": up,
        "endpoints": len(chain.rpc_urls),
    }
    if mismatches:
        report["error"] = "; ".join(mismatches) + "; fix the chain id or the RPC URL"
    elif up == 0:
        report["error"] = "no RPC endpoint answered: " + "; ".join(errors)
    elif errors:
        report["degraded"] = "; ".join(errors)
    return report
