"""The local stack behind `credagg dev` and `credagg devnet up`.

Everything it starts is a child process that dies with it (PR_SET_PDEATHSIG), so a developer's
Ctrl-C, a closed terminal or a `kill -9` leaves no Anvil, API or worker behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from rich.console import Console

from chain_adapters.devnet import (
    DEFAULT_DEVNETS,
    Devnet,
    DevnetSpec,
    die_with_parent,
    start_devnets,
    stop_devnets,
)
from chain_adapters.registry import dump_chains

if TYPE_CHECKING:
    from backend.config import Settings
    from chain_adapters.compiler import CompiledProject

DEVNET_TIMELOCK_DELAY = 2  # seconds: admin actions stay timelocked, but a demo need not wait
PREFERRED_PORTS = (8545, 8546)
STACK_FILE = "devstack.json"
ASSETS_FILE = "assets.json"

#: What the API and worker of a dev stack get unless the environment says otherwise: the log is
#: anchored within seconds (not the production 10 minutes), so `credagg demo` and a developer
#: see proofs verify against the chains while they wait, not after a coffee.
DEV_DEFAULTS = {
    "CREDAGG_ANCHOR_MAX_AGE_SECONDS": "10",
    "CREDAGG_ANCHOR_CHECK_INTERVAL": "2",
}


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def start_local_chains(
    chains_file: Path, *, block_time: float = 0.0, log_dir: Path | None = None
) -> list[Devnet]:
    """Two devnets on 8545/8546 when free (else any free ports); their chains file written."""
    specs: list[DevnetSpec] = []
    for spec, port in zip(DEFAULT_DEVNETS, PREFERRED_PORTS, strict=True):
        specs.append(
            DevnetSpec(spec.name, spec.chain_id, block_time, port if _port_free(port) else None)
        )
    devnets = start_devnets(specs, log_dir=log_dir)
    chains_file.parent.mkdir(parents=True, exist_ok=True)
    chains_file.write_text(
        dump_chains(
            # With automine (block_time 0) no block comes without a transaction, so waiting
            # for confirmations would wait forever: every mined block counts as final there.
            d.chain_config(
                confirmations=2 if block_time > 0 else 0, timelock_delay=DEVNET_TIMELOCK_DELAY
            )
            for d in devnets
        ),
        encoding="utf-8",
    )
    return devnets


@dataclass
class Service:
    name: str
    args: list[str]
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def start(self, env: dict[str, str], log_dir: Path) -> None:
        self.log_path = log_dir / f"{self.name}.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.args,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class DevStack:
    devnets: list[Devnet] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        stop_devnets(self.devnets)


def wait_until_ready(url: str, *, timeout: float, alive: Callable[[], bool]) -> dict[str, object]:
    """Poll /readyz until it answers 200; give up early if a child died."""
    deadline = time.monotonic() + timeout
    last: dict[str, object] = {}
    while time.monotonic() < deadline:
        if not alive():
            raise ServiceDied("a service exited during start-up; see its log under .credagg/logs")
        try:
            response = httpx.get(url, timeout=2.0)
            last = response.json()
            if response.status_code == 200:
                return last
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.3)
    raise ServiceDied(f"not ready after {timeout:.0f}s: {last}")


def service_commands(python: str, settings: Settings, *, api_port: int) -> list[Service]:
    """The API and one worker with beat."""
    from backend.worker import worker_argv

    return [
        Service(
            "api",
            [
                python,
                "-m",
                "uvicorn",
                "--factory",
                "backend.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
                "--no-access-log",
            ],
        ),
        Service("worker", worker_argv(python, settings)),
    ]


def deploy_all(settings: Settings, project: CompiledProject, console: Console) -> None:
    """Deploy the suite on every (fresh) devnet of the chains file.

    The devnets were just started, so whatever the database remembers of their chain ids
    (nonce counters, transactions) belongs to a previous run's chains and is forgotten first.
    """
    from backend.chains import chain_registry, deploy_to
    from backend.db import create_db_engine
    from chain_adapters.evm.store import TransactionStore

    engine = create_db_engine(settings)
    chains = list(chain_registry(settings))
    for chain in chains:
        TransactionStore(engine).forget_chain(chain.chain_id)
    try:
        # Chains are independent: deploy to all at once (each waits for its own blocks).
        with ThreadPoolExecutor(max_workers=len(chains) or 1) as pool:
            results = list(
                pool.map(lambda c: deploy_to(settings, c, engine, compiled=project), chains)
            )
        for chain, result in zip(chains, results, strict=True):
            console.print(
                f"[green]deployed[/] {chain.name}: {len(result.contracts)} contracts "
                f"({result.transactions_sent} new), roles {result.roles.state}; "
                f"ReceiptAnchor {result.address('ReceiptAnchor')}"
            )
    finally:
        engine.dispose()


def forget_embedded_state(settings: Settings) -> bool:
    """Delete the embedded SQLite database and broker files; True if anything was there.

    The devnets start from genesis on every `credagg dev`, so loans, watcher cursors, anchors
    and queued tasks remembered from the previous run describe chains that no longer exist:
    loan ids restart at 1 on the same CREATE2 addresses and would collide with old rows. The
    embedded default is the dev stack's own, so it starts afresh with its chains. A database
    given by `DATABASE_URL` is the operator's and is never touched (give the dev stack a fresh
    one, or expect chain-derived rows from earlier devnets to be stale).
    """
    if settings.database_url is not None:
        return False
    found = False
    broker = [settings.broker_db_path, settings.result_db_path] if settings.embedded_broker else []
    for path in [settings.embedded_database_path, *broker]:
        for companion in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
            if companion.exists():
                companion.unlink()
                found = True
    return found


class ServiceDied(RuntimeError):
    """A child of the dev stack exited on its own; its log says why."""


@dataclass(frozen=True)
class StackInfo:
    """Where a running dev stack is, for `credagg demo` and other local tools.

    Written to `<data_dir>/devstack.json` (mode 0600: it names the database) once the stack
    is ready and removed when it stops, so a tool pointed at the data dir finds the API, the
    database the API uses, the chains and asset files, the SIWE domain the API accepts and the
    log's public key, without the user repeating the stack's environment.
    """

    api: str
    data_dir: str
    chains_file: str
    assets_file: str | None
    database_url: str
    redis_url: str | None
    siwe_domain: str
    siwe_uri: str
    log_public_key: str
    pid: int

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=2), encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> StackInfo:
        fields = json.loads(path.read_text(encoding="utf-8"))
        return cls(**{name: fields.get(name) for name in cls.__dataclass_fields__})


def stack_info(settings: Settings, *, api: str, chains_file: Path) -> StackInfo:
    from backend.receipts.service import signer_from_settings

    return StackInfo(
        api=api,
        data_dir=str(settings.data_dir.resolve()),
        chains_file=str(chains_file.resolve()),
        assets_file=str(settings.credit_assets_file) if settings.credit_assets_file else None,
        database_url=settings.effective_database_url,
        redis_url=settings.redis_url,
        siwe_domain=settings.siwe_domain,
        siwe_uri=settings.siwe_uri,
        log_public_key=signer_from_settings(settings).public_key_bytes.hex(),
        pid=os.getpid(),
    )


def dev_environment(settings: Settings, chains_file: Path) -> tuple[dict[str, str], Settings]:
    """The children's environment and the matching settings.

    The asset registry defaults to `<data_dir>/assets.json`, reset to empty at every start
    (the devnets are new chains, so a previous run's token addresses mean nothing yet);
    `credagg demo` fills it when it deploys the market. A registry the user configured is kept.
    """
    env = {
        **os.environ,
        "CREDAGG_CHAINS_FILE": str(chains_file),
        "CREDAGG_DATA_DIR": str(settings.data_dir),
    }
    for name, value in DEV_DEFAULTS.items():
        env.setdefault(name, value)
    update: dict[str, object] = {"chains_file": chains_file}
    if settings.credit_assets_file is None:
        assets = (settings.data_dir / ASSETS_FILE).resolve()
        assets.write_text(json.dumps({"assets": [], "native_price_feeds": {}}), encoding="utf-8")
        env["CREDAGG_CREDIT_ASSETS_FILE"] = str(assets)
        update["credit_assets_file"] = assets
    return env, settings.model_copy(update=update)


def run_dev_stack(
    *,
    api_port: int,
    block_time: float,
    console: Console,
    ready_timeout: float = 120.0,
) -> None:
    """Start everything, print where it is, and block until Ctrl-C (then stop everything).

    During start-up a Ctrl-C (or SIGTERM) raises KeyboardInterrupt at once, so a long step such
    as a deployment is abandoned rather than awaited; once everything is up, the signal only
    ends the wait loop. Either way the `finally` stops every child. A child that dies on its
    own raises ServiceDied (exit code 1), never a silent success.
    """
    from backend.config import get_settings
    from backend.migrate import upgrade_head
    from chain_adapters.compiler import compile_timed

    settings = get_settings()
    data_dir = settings.data_dir
    log_dir = data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    chains_file = settings.chains_file or data_dir / "chains.toml"
    stack_file = data_dir / STACK_FILE
    stack_file.unlink(missing_ok=True)
    stack = DevStack()
    interrupted = {"now": False}

    def interrupt_now(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    def interrupt_later(signum: int, frame: object) -> None:
        interrupted["now"] = True

    previous = {s: signal.signal(s, interrupt_now) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        project, seconds = compile_timed()
        console.print(
            f"[green]compiled[/] {len(project.ours())} contracts in {seconds:.2f}s "
            f"({'cache' if project.cache_hit else project.solc})"
        )
        stack.devnets = start_local_chains(chains_file, block_time=block_time, log_dir=log_dir)
        for devnet in stack.devnets:
            console.print(
                f"[green]devnet[/] {devnet.name} chain {devnet.chain_id} {devnet.rpc_url}"
            )
        env, settings = dev_environment(settings, chains_file)
        os.environ["CREDAGG_CHAINS_FILE"] = str(chains_file)
        if forget_embedded_state(settings):
            console.print("[green]fresh[/] embedded database and broker (the devnets are new)")
        upgrade_head(settings)
        console.print(f"[green]migrated[/] {settings.safe_summary().get('database')}")
        deploy_all(settings, project, console)
        stack.services = service_commands(sys.executable, settings, api_port=api_port)
        for service in stack.services:
            service.start(env, log_dir)
        base = f"http://127.0.0.1:{api_port}"
        wait_until_ready(
            f"{base}/readyz",
            timeout=ready_timeout,
            alive=lambda: all(s.running() for s in stack.services),
        )
        for sig in previous:
            signal.signal(sig, interrupt_later)
        stack_info(settings, api=base, chains_file=chains_file).write(stack_file)
        console.print(
            f"[bold green]ready[/]  API {base}  docs {base}/docs  "
            f"readyz {base}/readyz  metrics {base}/metrics"
        )
        console.print(f"logs in {log_dir}; chains file {chains_file}; Ctrl-C stops everything")
        while not interrupted["now"]:
            dead = [s.name for s in stack.services if not s.running()]
            dead += [d.name for d in stack.devnets if not d.is_running()]
            if dead:
                raise ServiceDied(f"exited unexpectedly: {', '.join(dead)} (see {log_dir})")
            time.sleep(0.3)
    finally:
        console.print("stopping...")
        stack_file.unlink(missing_ok=True)
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        console.print("stopped")
