"""Run Slither's detectors over our contracts; fail on unexplained high/medium findings.

Each accepted finding needs an entry in contracts/slither-triage.toml:

    [[accepted]]
    check = "timestamp"              # the detector's argument name
    contract = "CollateralManager"   # where it fires
    why = "price staleness must be compared with block.timestamp; miners skew it by seconds"
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

from crytic_compile import CryticCompile
from crytic_compile.platform.solc_standard_json import SolcStandardJson
from slither import Slither
from slither.detectors import all_detectors
from slither.detectors.abstract_detector import AbstractDetector, DetectorClassification

ROOT = Path(__file__).resolve().parents[2]
GATED = {DetectorClassification.HIGH, DetectorClassification.MEDIUM}


def _detectors() -> list[type[AbstractDetector]]:
    found = [getattr(all_detectors, name) for name in dir(all_detectors)]
    return [d for d in found if isinstance(d, type) and issubclass(d, AbstractDetector)]


def _contract_of(result: dict) -> str:
    for element in result.get("elements", []):
        if element.get("type") == "contract":
            return str(element.get("name"))
        parent = element.get("type_specific_fields", {}).get("parent", {})
        if parent.get("type") == "contract":
            return str(parent.get("name"))
        grand = parent.get("type_specific_fields", {}).get("parent", {})
        if grand.get("type") == "contract":
            return str(grand.get("name"))
    return "?"


def _in_our_code(result: dict, ours: set[str]) -> bool:
    for element in result.get("elements", []):
        filename = element.get("source_mapping", {}).get("filename_absolute", "")
        if filename in ours:
            return True
    return False


def main(input_file: Path, triage_file: Path) -> int:
    payload = json.loads(input_file.read_text(encoding="utf-8"))
    platform = SolcStandardJson(payload["input"])
    compilation = CryticCompile(
        platform, solc=payload["solc"], solc_working_dir=str(ROOT / "contracts")
    )
    slither = Slither(compilation)
    for detector in _detectors():
        slither.register_detector(detector)
    findings = [r for batch in slither.run_detectors() for r in batch]

    accepted = []
    if triage_file.exists():
        accepted = tomllib.loads(triage_file.read_text(encoding="utf-8")).get("accepted", [])
    ours = set(payload["ours"])
    unexplained, explained, low = [], [], 0
    for result in findings:
        impact = result.get("impact", "")
        if impact not in ("High", "Medium") or not _in_our_code(result, ours):
            low += 1
            continue
        contract = _contract_of(result)
        match = next(
            (a for a in accepted if a["check"] == result["check"] and a["contract"] == contract),
            None,
        )
        line = f"[{impact}] {result['check']} in {contract}: {result['description'].strip()}"
        (explained if match else unexplained).append(
            line + (f"\n    accepted: {match['why']}" if match else "")
        )

    print(
        f"slither: {len(findings)} findings; {low} low/informational/optimization "
        "or outside our code"
    )
    for line in explained:
        print("  explained " + line)
    for line in unexplained:
        print("  UNEXPLAINED " + line)
    print(f"slither: {len(unexplained)} unexplained high/medium finding(s)")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
