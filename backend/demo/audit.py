"""The auditor's part of the demo: an auditor key lists the wallet's receipts, waits until
each proof bundle names an anchor on every chain (the worker anchors on its schedule), and
runs `credagg verify` on the downloaded bundles against both chains, in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.demo.chain import mine
from backend.demo.context import DemoContext
from backend.demo.http import Api
from backend.demo.operator import auditor_key
from backend.demo.output import StepFailed

FINALITY_BLOCKS = 70  # Anvil's `finalized` trails the head by 64 blocks


@dataclass(frozen=True)
class Verified:
    exit_code: int
    report: dict[str, Any]
    bundles: list[Path]


@dataclass
class Auditor:
    ctx: DemoContext
    api: Api
    timeout: float

    def __post_init__(self) -> None:
        self.key = auditor_key(self.ctx.settings)

    def anchored_receipts(self, tenant: str, wanted: set[str]) -> list[dict[str, Any]]:
        """The tenant's receipts (including `wanted`), once all are anchored on every chain."""
        chain_ids = {c.chain_id for c in self.ctx.chains}
        deadline = time.monotonic() + self.timeout
        while True:
            receipts = self.receipts_of(tenant)
            ids = {r["id"] for r in receipts}
            if wanted <= ids and all(chain_ids <= self._anchored_on(rid) for rid in ids):
                return receipts
            if time.monotonic() > deadline:
                raise StepFailed(
                    f"the receipts of {tenant} were not anchored on every chain within "
                    f"{self.timeout:.0f}s (have {sorted(ids)})",
                    json.dumps(self.api.get("/v1/log/checkpoint"), indent=2),
                )
            time.sleep(1)

    def _anchored_on(self, receipt_id: str) -> set[int]:
        bundle = self.api.get(f"/v1/receipts/{receipt_id}/proof", token=self.key)
        return {a["chain_id"] for a in bundle["anchors"]}

    def receipts_of(self, tenant: str) -> list[dict[str, Any]]:
        """Every receipt of `tenant`, walking the auditor's keyset pages of GET /v1/receipts."""
        found: list[dict[str, Any]] = []
        after = None
        while True:
            params: dict[str, Any] = {"limit": 500}
            if after is not None:
                params["after"] = after
            page = self.api.get("/v1/receipts", token=self.key, params=params)
            found += [r for r in page["items"] if r["tenant"] == tenant]
            after = page.get("next_after")
            if after is None:
                return found

    def verify(self, receipts: list[dict[str, Any]], folder: Path) -> Verified:
        """Mine to finality, download the bundles, run `credagg verify`; exit 2 (anchored but
        not final yet) means mine and ask again, any other exit code is the answer."""
        folder.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.timeout
        while True:
            for chain in self.ctx.chains:  # what a devnet's `finalized` would take a minute for
                mine(chain, FINALITY_BLOCKS)
            paths = []
            for receipt in receipts:
                bundle = self.api.get(f"/v1/receipts/{receipt['id']}/proof", token=self.key)
                path = folder / f"{receipt['kind']}-{receipt['id']}.json"
                path.write_text(json.dumps(bundle, indent=2), encoding="utf-8")
                paths.append(path)
            code, report = run_verify(paths, self.ctx.stack.log_public_key, self.rpc_options())
            if code != 2 or time.monotonic() > deadline:
                return Verified(code, report, paths)
            time.sleep(2)

    def rpc_options(self) -> list[str]:
        return [o for c in self.ctx.chains for o in ("--rpc", c.rpc_urls[0])]


def run_verify(paths: list[Path], pubkey: str, rpcs: list[str]) -> tuple[int, dict[str, Any]]:
    """`credagg verify` as the auditor runs it: its own process, its exit code, its report."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "backend.cli",
            "verify",
            *map(str, paths),
            "--pubkey",
            pubkey,
            *rpcs,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        report = {"stdout": done.stdout, "stderr": done.stderr}
    return done.returncode, report
