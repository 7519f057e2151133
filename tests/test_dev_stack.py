"""`credagg dev` (what scripts/dev runs) on the embedded default: ready, then a clean Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from backend.devstack import STACK_FILE, StackInfo
from chain_adapters.devnet import free_port
from chain_adapters.registry import load_chains
from chain_adapters.rpc import fetch_chain_id

ROOT = Path(__file__).resolve().parents[1]


def _children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _embedded_dev_env(tmp_path: Path) -> dict[str, str]:
    """What `scripts/dev` sees on a fresh laptop: no servers, no chains file, its own data dir."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        CREDAGG_DATA_DIR=str(tmp_path / "data"),
        CREDAGG_ENVIRONMENT="development",
        PYTHONUNBUFFERED="1",  # the test reads the log as it is written
    )
    env.pop("CREDAGG_CHAINS_FILE", None)
    return env


def _still_running(pids: list[int]) -> list[int]:
    """The pids that are alive and not zombies."""
    return [
        pid
        for pid in pids
        if Path(f"/proc/{pid}").exists()
        and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    ]


def test_dev_stack_reaches_ready_and_stops_on_sigint(tmp_path: Path) -> None:
    _run_stack_once(tmp_path)
    # A second start on the same data dir: the devnets are new chains, the database is not.
    _run_stack_once(tmp_path)


def _run_stack_once(tmp_path: Path) -> None:
    env = _embedded_dev_env(tmp_path)
    port = free_port()
    log = open(tmp_path / "dev.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "dev", "--port", str(port), "--block-time", "0"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        body: dict = {}
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "dev.log").read_text()
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                body = response.json()
                if response.status_code == 200:
                    break
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.5)
        else:
            raise AssertionError(f"never ready: {body}\n{(tmp_path / 'dev.log').read_text()}")
        # /readyz can answer before the stack itself has seen it; Ctrl-C means "stop a running
        # stack" (exit 0) only once the stack has said it is ready.
        while "ready  API" not in (tmp_path / "dev.log").read_text():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        components = body["components"]
        assert components["database"]["ok"] and components["broker"]["ok"]
        chain_components = [name for name in components if name.startswith("chain:")]
        assert len(chain_components) == 2, components
        for chain in ("devnet-a", "devnet-b"):
            manifest = tmp_path / "data" / "deployments" / f"{chain}.json"
            assert "ReceiptAnchor" in manifest.read_text(), chain
        # where local tools (credagg demo) find this stack: its API, database, files, key
        info = StackInfo.read(tmp_path / "data" / STACK_FILE)
        assert info.api == f"http://127.0.0.1:{port}"
        assert info.database_url == f"sqlite:///{tmp_path / 'data' / 'credagg.db'}"
        assert info.assets_file is not None
        assert json.loads(Path(info.assets_file).read_text()) == {
            "assets": [],
            "native_price_feeds": {},
        }
        children = _children_of(proc.pid)
        assert len(children) >= 4  # two devnets, the API, the worker

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, (tmp_path / "dev.log").read_text()
        time.sleep(0.5)
        alive = _still_running(children)
        assert alive == [], f"left running: {alive}"
        assert not (tmp_path / "data" / STACK_FILE).exists()  # a stopped stack is not found
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def test_devnet_up_runs_two_chains_until_sigint(tmp_path: Path) -> None:
    chains_file = tmp_path / "chains.toml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "devnet", "up", "--chains-file", str(chains_file)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not chains_file.exists() and time.monotonic() < deadline:
            assert proc.poll() is None
            time.sleep(0.1)
        registry = load_chains(chains_file)
        assert sorted(c.chain_id for c in registry) == [31337, 31338]
        for chain in registry:
            assert fetch_chain_id(chain.rpc_urls[0]) == chain.chain_id
        children = _children_of(proc.pid)
        assert len(children) == 2
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert _still_running(children) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ctrl_c_during_start_up_stops_everything_started(tmp_path: Path) -> None:
    env = _embedded_dev_env(tmp_path)
    log_path = tmp_path / "dev.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "dev", "--port", str(free_port()),
             "--block-time", "1"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "devnet-b" not in log_path.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log_path.read_text()
            time.sleep(0.05)
        children = _children_of(proc.pid)
        assert len(children) == 2  # the devnets; deployment is under way, no API yet
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130, log_path.read_text()
        assert "interrupted during start-up" in log_path.read_text()
        time.sleep(0.5)
        assert _still_running(children) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
