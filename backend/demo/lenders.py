"""The demo's two traditional lenders: `scripts/example_lender.py`, each its own process,
stopped by pid when the demo ends (pass or fail)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from backend.demo.output import StepFailed
from chain_adapters.devnet import die_with_parent

LENDER_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "example_lender.py"


@dataclass
class LenderProcess:
    name: str
    process: subprocess.Popen[str]
    port: int
    secret_file: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/quotes"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_lender(name: str, folder: Path, *args: str) -> LenderProcess:
    """Start one lender on a free port; its secret file is written once credagg issues it."""
    folder.mkdir(parents=True, exist_ok=True)
    secret_file = folder / f"{name}.secret"
    secret_file.unlink(missing_ok=True)
    process = subprocess.Popen(
        [
            sys.executable,
            str(LENDER_SCRIPT),
            "--port",
            "0",
            "--secret-file",
            str(secret_file),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
        preexec_fn=die_with_parent,  # a killed demo leaves no lender behind
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("listening on "):
        process.kill()
        process.wait()
        raise StepFailed(f"lender {name} did not start", line or "(no output)")
    return LenderProcess(name, process, int(line.split()[-1]), secret_file)
