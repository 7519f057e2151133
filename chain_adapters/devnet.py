"""Anvil process manager.

Devnets are child processes that must never outlive their owner: a test run killed with SIGKILL
or a crashed `credagg dev` would otherwise leave Anvil processes holding ports. Each child is
started with PR_SET_PDEATHSIG (Linux), so the kernel sends it SIGTERM the moment its parent dies,
however the parent dies; `stop()` handles the orderly case.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from chain_adapters.exceptions import DevnetError
from chain_adapters.paths import ANVIL_NPM_BINARY
from chain_adapters.registry import ChainConfig
from chain_adapters.rpc import fetch_chain_id

# Anvil's default mnemonic: well-known, funded, and never valid on a real chain.
DEVNET_MNEMONIC = "test test test test test test test test test test test junk"
DEVNET_BALANCE_ETH = 10_000
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class DevnetSpec:
    """What to start: a chain id, and a block time (0 = mine on every transaction)."""

    name: str
    chain_id: int
    block_time: float = 0.0
    port: int | None = None


@dataclass
class Devnet:
    spec: DevnetSpec
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def chain_id(self) -> int:
        return self.spec.chain_id

    @property
    def name(self) -> str:
        return self.spec.name

    def chain_config(
        self, *, confirmations: int = 0, timelock_delay: int = 2, block_time: float | None = None
    ) -> ChainConfig:
        """This devnet as a chains-file entry (devnet = true allows a seconds-long timelock)."""
        return ChainConfig(
            name=self.name,
            chain_id=self.chain_id,
            rpc_urls=(self.rpc_url,),
            finality="confirmations",
            confirmations=confirmations,
            block_time=block_time or self.spec.block_time or 1.0,
            timelock_delay=timelock_delay,
            devnet=True,
        )

    def is_running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; always reaps the child."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self, *, timeout: float = 30.0) -> None:
        """Start Anvil again on the same port (state is lost, as after an RPC outage + reset)."""
        self.stop()
        fresh = start_devnet(
            DevnetSpec(self.spec.name, self.spec.chain_id, self.spec.block_time, self.port),
            timeout=timeout,
            log_dir=self.log_path.parent if self.log_path else None,
        )
        self.process = fresh.process


def anvil_binary() -> str:
    """ANVIL_BINARY, else the npm-pinned binary under contracts/, else `anvil` on PATH."""
    explicit = os.environ.get("ANVIL_BINARY")
    if explicit:
        return explicit
    if ANVIL_NPM_BINARY.exists():
        return str(ANVIL_NPM_BINARY)
    found = shutil.which("anvil")
    if found:
        return found
    raise DevnetError(
        "no Anvil binary: run `npm ci` in contracts/ (scripts/dev and scripts/test do this), "
        "or set ANVIL_BINARY"
    )


def free_port() -> int:
    """A port that was free a moment ago; start_devnet retries if another process takes it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    os.setpgrp()  # own process group: a Ctrl-C in the terminal reaches the owner, not Anvil
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def start_devnet(spec: DevnetSpec, *, timeout: float = 30.0, log_dir: Path | None = None) -> Devnet:
    """Start one Anvil and return once `eth_chainId` answers with the requested id."""
    attempts = 1 if spec.port else 3
    last_error = ""
    for _ in range(attempts):
        port = spec.port or free_port()
        args = [
            anvil_binary(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--chain-id",
            str(spec.chain_id),
            "--mnemonic",
            DEVNET_MNEMONIC,
            "--balance",
            str(DEVNET_BALANCE_ETH),
            "--accounts",
            "10",
        ]
        if spec.block_time > 0:
            args += ["--block-time", str(spec.block_time)]
        log_path = (log_dir / f"anvil-{spec.name}.log") if log_dir else None
        log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
        process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        if log_path:
            log.close()  # type: ignore[union-attr]
        devnet = Devnet(spec=spec, port=port, process=process, log_path=log_path)
        try:
            _wait_ready(devnet, timeout)
            return devnet
        except DevnetError as exc:
            last_error = str(exc)
            devnet.stop()
    raise DevnetError(f"could not start devnet {spec.name!r}: {last_error}", chain=spec.name)


def _wait_ready(devnet: Devnet, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not devnet.is_running():
            raise DevnetError(
                f"anvil exited with code {devnet.process.returncode} (port {devnet.port} taken?)",
                chain=devnet.name,
            )
        try:
            actual = fetch_chain_id(devnet.rpc_url, timeout=1.0)
        except (httpx.HTTPError, OSError):
            time.sleep(0.05)
            continue
        if actual != devnet.chain_id:
            raise DevnetError(
                f"port {devnet.port} answers chain id {actual}, not {devnet.chain_id}: "
                "another node holds the port",
                chain=devnet.name,
            )
        return
    raise DevnetError(f"RPC not ready after {timeout}s on port {devnet.port}", chain=devnet.name)


def start_devnets(
    specs: Sequence[DevnetSpec], *, timeout: float = 30.0, log_dir: Path | None = None
) -> list[Devnet]:
    """Start several devnets; if one fails, the ones already started are stopped."""
    started: list[Devnet] = []
    try:
        for spec in specs:
            started.append(start_devnet(spec, timeout=timeout, log_dir=log_dir))
    except BaseException:
        stop_devnets(started)
        raise
    return started


def stop_devnets(devnets: Sequence[Devnet]) -> None:
    for devnet in devnets:
        devnet.stop()


@contextlib.contextmanager
def running_devnets(
    specs: Sequence[DevnetSpec], *, timeout: float = 30.0, log_dir: Path | None = None
) -> Iterator[list[Devnet]]:
    devnets = start_devnets(specs, timeout=timeout, log_dir=log_dir)
    try:
        yield devnets
    finally:
        stop_devnets(devnets)


DEFAULT_DEVNETS: tuple[DevnetSpec, ...] = (
    DevnetSpec(name="devnet-a", chain_id=31337, block_time=0.0),
    DevnetSpec(name="devnet-b", chain_id=31338, block_time=0.0),
)
