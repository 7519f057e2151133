"""Every command the README (and docs/*.md) shows runs as written.

Each fenced `bash` block is preceded by an HTML comment that says how it is run:

* `<!-- run: standalone -->`: from the repository root on a fresh data dir, no stack needed;
* `<!-- run: stack -->`: the one command that starts the dev stack (`scripts/dev`); this test
  starts the stack with exactly that command, adding `--port` with a free port;
* `<!-- run: demo -->`: the demo command (between `<!-- demo-command -->` markers); the
  walkthroughs below it assume it ran, so this test runs it on the stack before them (its own
  checks are in tests/e2e);
* `<!-- run: with-dev-stack -->`: against that running stack, in document order (README first,
  then docs/*.md by name), each block a `bash -euo pipefail` script;
* `<!-- run: bench -->`: the benchmark runner, run by tests/bench/test_run_all.py with
  `CREDAGG_BENCH_QUICK=1` (a full run takes many minutes);
* `<!-- run: never, because ... -->`: cannot run here (a real chain's RPC, real keys); the reason
  is required.

A bash block without a marker fails the test, so a new command cannot slip in untested. Blocks
take their addresses from the stack itself (`$DATA/devstack.json`, where
`DATA=${CREDAGG_DATA_DIR:-.credagg}`), so they work unchanged on a developer's default data dir
and on this test's own one. The stack runs on the embedded default (SQLite, SQLite broker), as
on a fresh clone; standalone blocks get a throwaway PostgreSQL database when DATABASE_URL names
one.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from backend.config import Settings
from backend.kit.throwaway_db import fresh_postgres_database, is_postgres
from chain_adapters.devnet import free_port

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md"))]
KINDS = {"standalone", "stack", "demo", "with-dev-stack", "bench", "never"}
MARKER = re.compile(r"^<!--\s*run:\s*(?P<kind>[a-z-]+)\s*(?:,\s*(?P<reason>.*?))?\s*-->$")
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")
BLOCK_TIMEOUT = 240


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    kind: str | None
    reason: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def bash_blocks(path: Path) -> list[Block]:
    """The fenced bash/sh blocks of a markdown file with the run marker just above each."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and not lines[index].startswith("```"):
            body.append(lines[index])
            index += 1
        index += 1  # the closing fence
        if fence.group("lang") not in ("bash", "sh", "shell"):
            continue
        marker = None
        for i in range(start - 1, -1, -1):  # the HTML comments just above the fence
            line = lines[i].strip()
            if not line:
                continue
            if not line.startswith("<!--"):
                break
            marker = marker or MARKER.match(line)
        blocks.append(
            Block(
                path,
                start + 1,
                marker.group("kind") if marker else None,
                (marker.group("reason") or "") if marker else "",
                "\n".join(body) + "\n",
            )
        )
    return blocks


def all_blocks() -> list[Block]:
    return [block for path in DOCUMENTS for block in bash_blocks(path)]


def blocks_of(kind: str) -> list[Block]:
    return [block for block in all_blocks() if block.kind == kind]


# -- the markers themselves ----------------------------------------------------------------


def test_every_bash_block_says_how_it_runs() -> None:
    problems = []
    for block in all_blocks():
        if block.kind not in KINDS:
            problems.append(f"{block.where}: marker {block.kind!r} is not one of {sorted(KINDS)}")
        elif block.kind == "never" and not block.reason.startswith("because "):
            problems.append(f"{block.where}: `run: never` needs a reason: `never, because ...`")
    assert problems == [], "\n".join(problems)
    stack = [block for block in blocks_of("stack") if block.path == README]
    assert len(stack) == 1, "the README needs exactly one `run: stack` block (scripts/dev)"
    assert blocks_of("with-dev-stack") and blocks_of("standalone") and blocks_of("bench")


def demo_command() -> str:
    """The demo command tests/e2e runs: the bash block between the demo-command markers."""
    text = README.read_text(encoding="utf-8")
    found = re.search(
        r"<!-- demo-command -->\s*```bash\n(?P<code>.*?)```\s*<!-- /demo-command -->",
        text,
        re.DOTALL,
    )
    assert found is not None, "README lacks the <!-- demo-command --> block"
    return found.group("code").strip()


def test_demo_command_block_is_the_one_marked_demo() -> None:
    demos = blocks_of("demo")
    assert [block.code.strip() for block in demos] == [demo_command()]


# -- the configuration reference -----------------------------------------------------------


def env_name(name: str) -> str:
    field = Settings.model_fields[name]
    alias = field.validation_alias
    if isinstance(alias, str):
        return alias
    return f"CREDAGG_{name.upper()}"


def settings_table() -> str:
    """The README's configuration table: from `| variable |` to the first non-table line."""
    text = README.read_text(encoding="utf-8")
    found = re.search(r"^\| variable \| default \| what it does \|\n(?:\|.*\n)+", text, re.M)
    assert found is not None, "README lacks the `| variable | default | what it does |` table"
    return found.group()


def test_configuration_table_lists_every_setting() -> None:
    table = settings_table()
    named = {
        token
        for line in table.splitlines()
        for token in re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1])
    }
    expected = {env_name(name) for name in Settings.model_fields}
    assert sorted(expected - named) == [], "settings missing from the README's table"
    assert sorted(named - expected) == [], "README's table names variables Settings lacks"


# -- running the blocks --------------------------------------------------------------------


def execute(block: Block, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The block as a `bash -euo pipefail` script from the repository root."""
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
        check=False,
    )


def assert_ran(block: Block, done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, (
        f"{block.where} exited {done.returncode}\n--- block\n{block.code}"
        f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
    )


def run_block(block: Block, env: dict[str, str]) -> None:
    assert_ran(block, execute(block, env))


def base_env(data_dir: Path) -> dict[str, str]:
    """A developer's shell on a fresh clone, with its own data dir and no credagg variables."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CREDAGG_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(CREDAGG_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    return env


@pytest.mark.parametrize("block", blocks_of("standalone"), ids=lambda b: b.where)
def test_standalone_block_runs(block: Block, tmp_path: Path) -> None:
    env = base_env(tmp_path / "data")
    with ExitStack() as stack:
        url = os.environ.get("DATABASE_URL")
        if is_postgres(url):
            assert url is not None
            env["DATABASE_URL"] = stack.enter_context(fresh_postgres_database(url))
        run_block(block, env)


@dataclass
class DevStack:
    env: dict[str, str]
    api: str
    log: Path


def _wait_ready(proc: subprocess.Popen[bytes], api: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")[-4000:]
        try:
            if httpx.get(f"{api}/readyz", timeout=2).status_code == 200 and (
                "ready  API" in log.read_text(errors="replace")
            ):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"dev stack not ready:\n{log.read_text(errors='replace')[-4000:]}")


#: The devnet ports `scripts/dev` prefers when they are free (backend/devstack.py).
PREFERRED_DEVNET_PORTS = (8545, 8546)


def hold_ports(ports: tuple[int, ...], stack: ExitStack) -> None:
    """Bind the ports that are free, so the stack under test starts its devnets elsewhere.

    `scripts/dev` takes 8545/8546 when they look free; two stacks starting at once (this test
    and a developer's, or another test's) could both see them free, and one would then deploy
    to the other's Anvil. Holding them while the stack starts rules that race out.
    """
    for port in ports:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()  # someone else's stack holds it: ours will not pick it either
            continue
        stack.callback(sock.close)


@pytest.fixture(scope="module")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """The README's `run: stack` command on a free port and a fresh data dir, until the end."""
    (stack_block,) = [block for block in blocks_of("stack") if block.path == README]
    tmp = tmp_path_factory.mktemp("readme-stack")
    env = base_env(tmp / "data")
    port = free_port()
    log = tmp / "dev.log"
    command = f"{stack_block.code.split('#')[0].strip()} --port {port}"
    held = ExitStack()
    hold_ports(PREFERRED_DEVNET_PORTS, held)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", f"exec {command}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        api = f"http://127.0.0.1:{port}"
        with held:
            _wait_ready(proc, api, log, timeout=240)
        yield DevStack(env, api, log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@dataclass
class AfterDemo:
    stack: DevStack
    demo: list[tuple[Block, subprocess.CompletedProcess[str]]]


@pytest.fixture(scope="module")
def after_demo(dev_stack: DevStack) -> AfterDemo:
    """The walkthroughs follow the quick start: the README's demo command runs once first.

    Its outcome is asserted by `test_demo_block_runs`, not here, so a failing demo step (its own
    test is tests/e2e) still lets each walkthrough show whether its commands work.
    """
    return AfterDemo(dev_stack, [(b, execute(b, dev_stack.env)) for b in blocks_of("demo")])


def test_demo_block_runs(after_demo: AfterDemo) -> None:
    assert after_demo.demo, "the README shows no demo command"
    for block, done in after_demo.demo:
        assert_ran(block, done)


@pytest.mark.parametrize("block", blocks_of("with-dev-stack"), ids=lambda b: b.where)
def test_walkthrough_block_runs_against_the_dev_stack(block: Block, after_demo: AfterDemo) -> None:
    run_block(block, after_demo.stack.env)


def test_stack_block_is_what_scripts_dev_runs() -> None:
    """`run: stack` is `scripts/dev` (bootstrap, then `credagg dev`), nothing else."""
    (block,) = [b for b in blocks_of("stack") if b.path == README]
    assert block.code.split("#")[0].strip() == "scripts/dev"
    assert "credagg dev" in (ROOT / "scripts" / "dev").read_text()


@pytest.mark.parametrize("block", all_blocks(), ids=lambda b: b.where)
def test_every_block_parses_as_bash(block: Block) -> None:
    """Even the blocks that cannot run here (`run: never`) are valid bash."""
    done = subprocess.run(
        ["bash", "-n", "-c", block.code], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{block.where}: {done.stderr}"
