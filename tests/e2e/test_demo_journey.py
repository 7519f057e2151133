"""Issue 7's journey as a user runs it: `credagg dev` as its own process tree (two Anvil
devnets, the API, a Celery worker with beat) on PostgreSQL and Redis when `DATABASE_URL` /
`REDIS_URL` are set (a throwaway database on that server), and the demo command exactly as
README.md shows it, as a subprocess talking HTTP to that stack.

The demo checks each step itself; this test then checks the outcome independently: the loan
on the chain through web3, the alert row in the stack's database, the proof bundles with its
own `credagg verify` run, the lenders' processes gone.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select
from web3 import Web3

from backend.credit.chain import LOAN_CLOSED
from backend.devstack import STACK_FILE, StackInfo
from backend.kit.throwaway_db import fresh_postgres_database, is_postgres
from backend.risk.models import RiskAlert
from chain_adapters.compiler import compile_project
from chain_adapters.devnet import free_port
from chain_adapters.registry import load_chains

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DEMO_BLOCK = re.compile(r"<!-- demo-command -->(.*?)<!-- /demo-command -->", re.DOTALL)
AMOUNT = 10_000 * 10**6  # what the demo borrows (backend/demo/journey.py)
STEPS = [
    "dev stack",
    "market: two_chain_market on both devnets",
    "providers: two DeFi pools, two HTTP lenders",
    "wallet: a brand-new key, gas and 10 WETH",
    "sign in with Ethereum (SIWE)",
    "wallet webhook: PUT /v1/me/webhook",
    "credit request: ranked quotes",
    "accept the best quote (EIP-712)",
    "deposit collateral",
    "risk before repaying: GET /v1/me/risk",
    "price drop: ETH/USD $2,000 -> $1,700",
    "early-warning alert at the wallet's webhook",
    "repay in full",
    "score improves: GET /v1/me/risk",
    "auditor: the wallet's receipts, anchored on both chains",
    "auditor: proof bundles pass credagg verify",
    "reset ETH/USD to $2,000",
]


def demo_command() -> list[str]:
    """The one command line between the README's demo markers (a code fence around it)."""
    found = DEMO_BLOCK.search(README.read_text(encoding="utf-8"))
    assert found, "README.md has no <!-- demo-command --> ... <!-- /demo-command --> block"
    lines = [
        line.strip()
        for line in found.group(1).splitlines()
        if line.strip() and not line.strip().startswith("```")
    ]
    assert len(lines) == 1, f"expected one command between the demo markers, got {lines}"
    return shlex.split(lines[0].split(" #")[0])


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    info: StackInfo
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _stack_env(tmp_path: Path, database_url: str | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CREDAGG_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        CREDAGG_DATA_DIR=str(tmp_path / "data"),
        CREDAGG_ENVIRONMENT="development",
        PYTHONUNBUFFERED="1",
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]
    return env


@pytest.fixture
def dev_stack(tmp_path: Path) -> Iterator[RunningStack]:
    """`credagg dev` on its own data dir and ports; Ctrl-C'd (then killed) afterwards."""
    with ExitStack() as cleanup:
        base = os.environ.get("DATABASE_URL")
        url = None
        if base is not None and is_postgres(base):
            url = cleanup.enter_context(fresh_postgres_database(base))
        env = _stack_env(tmp_path, url)
        log_path = tmp_path / "dev.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "backend.cli", "dev", "--port", str(free_port())],
                cwd=tmp_path,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            stack_file = tmp_path / "data" / STACK_FILE
            deadline = time.monotonic() + 180
            while not stack_file.exists():
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, f"never ready:\n{log_path.read_text()}"
                time.sleep(0.3)
            info = StackInfo.read(stack_file)
            assert httpx.get(f"{info.api}/readyz", timeout=5).status_code == 200
            yield RunningStack(process, env, info, log_path)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def test_demo_walks_the_whole_journey_over_http(dev_stack: RunningStack) -> None:
    command = demo_command()
    done = subprocess.run(
        command, cwd=ROOT, env=dev_stack.env, capture_output=True, text=True, timeout=400
    )
    output = f"{done.stdout}\n{done.stderr}\n--- dev stack log ---\n{dev_stack.log()[-4000:]}"
    assert done.returncode == 0, output
    summary: dict[str, Any] = json.loads(
        (Path(dev_stack.info.data_dir) / "demo" / "last-run.json").read_text()
    )
    assert summary["ok"] is True, output
    assert [s["step"] for s in summary["steps"]] == STEPS, output
    assert all(s["ok"] for s in summary["steps"]), output
    assert "demo complete" in done.stdout + done.stderr

    # the quotes: both pools asked, the collateral's chain's pool and one lender quoted
    request = summary["credit_request"]
    providers = summary["providers"]
    quoted = {q["provider_id"] for q in request["quotes"]}
    assert providers["PoolA-31337"]["id"] in quoted
    assert providers["lender-quoting"]["id"] in quoted
    outcomes = {row["provider_id"]: row["outcome"] for row in request["not_quoted"]}
    assert outcomes[providers["lender-declining"]["id"]] == "declined"
    assert providers["PoolB-31338"]["id"] in outcomes  # collateral is on the other chain

    # the loan, read from the chain: the wallet's, for the amount, and closed by the repayment
    loan = summary["loan"]
    chain = load_chains(Path(dev_stack.info.chains_file)).by_chain_id(loan["chain_id"])
    w3 = Web3(Web3.HTTPProvider(chain.rpc_urls[0]))
    assert w3.eth.get_transaction_receipt(loan["tx_hash"])["status"] == 1
    abi = compile_project().get("CreditAggregator").abi
    aggregator = w3.eth.contract(address=Web3.to_checksum_address(loan["aggregator"]), abi=abi)
    get_loan = next(i for i in abi if i.get("type") == "function" and i["name"] == "getLoan")
    names = [c["name"] for c in get_loan["outputs"][0]["components"]]
    on_chain = dict(
        zip(names, aggregator.functions.getLoan(int(loan["loan_id"])).call(), strict=True)
    )
    assert on_chain["borrower"].lower() == summary["wallet"].lower()
    assert on_chain["principal"] == AMOUNT
    assert on_chain["state"] == LOAN_CLOSED

    # the early-warning alert: in the stack's database and at the wallet's webhook, verified
    engine = create_engine(dev_stack.info.database_url)
    try:
        with engine.connect() as connection:
            alerts = connection.execute(
                select(RiskAlert.threshold, RiskAlert.borrower).where(
                    RiskAlert.chain_id == loan["chain_id"],
                    RiskAlert.loan_id == str(loan["loan_id"]),
                )
            ).all()
    finally:
        engine.dispose()
    assert [(str(a.threshold), a.borrower) for a in alerts] == [
        ("1.5", summary["wallet"].lower())
    ], alerts
    assert str(summary["alert"]["event"]["data"]["loan_id"]) == str(loan["loan_id"])
    risk = summary["risk"]
    assert risk["after"]["score"] > risk["before"]["score"]

    # the receipts: quote set and acceptance, verified again here against both chains
    kinds = {r["kind"] for r in summary["receipts"]}
    assert {"quote_set", "acceptance"} <= kinds, summary["receipts"]
    bundles = summary["verify"]["bundles"]
    rpcs = [
        o for c in load_chains(Path(dev_stack.info.chains_file)) for o in ("--rpc", c.rpc_urls[0])
    ]
    verified = subprocess.run(
        [
            sys.executable,
            "-m",
            "backend.cli",
            "verify",
            *bundles,
            "--pubkey",
            dev_stack.info.log_public_key,
            *rpcs,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert [b["result"] for b in report["bundles"]] == ["valid"] * len(bundles)

    # the lenders were separate processes, and the demo stopped them
    for pid in summary["lender_pids"]:
        assert not _alive(pid), f"lender {pid} still running"


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"
