"""Anvil devnets: start, answer, stop, and never outlive their owner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from chain_adapters.devnet import DevnetSpec, running_devnets, start_devnet
from chain_adapters.exceptions import DevnetError
from chain_adapters.rpc import fetch_chain_id, rpc_call

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _wait_dead(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_two_devnets_with_their_chain_ids_and_block_time() -> None:
    specs = [DevnetSpec("x", 41001, block_time=1), DevnetSpec("y", 41002)]
    with running_devnets(specs) as (x, y):
        assert fetch_chain_id(x.rpc_url) == 41001
        assert fetch_chain_id(y.rpc_url) == 41002
        assert x.port != y.port
        first = int(rpc_call(x.rpc_url, "eth_blockNumber"), 16)
        time.sleep(2.2)
        assert int(rpc_call(x.rpc_url, "eth_blockNumber"), 16) > first  # interval mining
        assert int(rpc_call(y.rpc_url, "eth_blockNumber"), 16) == 0  # automine, no tx
        pids = [x.process.pid, y.process.pid]
    assert all(_wait_dead(pid) for pid in pids)


def test_port_taken_by_another_chain_is_a_clear_error() -> None:
    with (
        running_devnets([DevnetSpec("x", 41003)]) as (x,),
        pytest.raises(DevnetError, match="could not start devnet 'y'"),
    ):
        start_devnet(DevnetSpec("y", 41004, port=x.port), timeout=5)


def test_no_orphan_when_the_parent_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = textwrap.dedent(
        f"""
        import time
        from chain_adapters.devnet import DevnetSpec, start_devnet
        d = start_devnet(DevnetSpec("orphan", 41005))
        open({str(pid_file)!r}, "w").write(str(d.process.pid))
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    anvil_pid = int(pid_file.read_text())
    assert _alive(anvil_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert _wait_dead(anvil_pid), "anvil survived its parent's SIGKILL"


def test_no_anvil_left_after_a_failing_test_session(tmp_path: Path) -> None:
    """A pytest session whose test fails still stops the session devnets."""
    pid_file = tmp_path / "pids"
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(
        textwrap.dedent(
            f"""
            def test_fails(devnets):
                open({str(pid_file)!r}, "w").write(
                    ",".join(str(d.process.pid) for d in devnets))
                assert False, "deliberate"
            """
        )
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.conftest",
            "--rootdir",
            str(tmp_path),
            "-c",
            "/dev/null",
            str(test_file),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    pids = [int(p) for p in pid_file.read_text().split(",")]
    assert len(pids) == 2
    assert all(_wait_dead(pid) for pid in pids)
