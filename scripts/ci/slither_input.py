"""Write the standard-json input Slither analyses: our contracts with every import inlined.

Runs in the main venv; prints the resolved solc executable on stdout's last line for the caller.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from chain_adapters.compiler import (
    collect_sources,
    default_source_roots,
    discover_sources,
    resolve_solc,
    standard_json_input,
)


def main(out: Path) -> None:
    found = discover_sources([r for r in default_source_roots() if r.name == "contracts"])
    # Absolute unit names: crytic-compile must find every source on disk, and node_modules
    # (for @openzeppelin/...) is searched relative to its working dir, contracts/.
    own = {str(path.resolve()): path for path in found.values()}
    data = standard_json_input(collect_sources(own))
    data["settings"]["outputSelection"] = {
        "*": {"*": ["abi", "metadata", "evm.bytecode", "evm.deployedBytecode"], "": ["ast"]}
    }
    payload = {"solc": resolve_solc().path, "input": data, "ours": sorted(own)}
    out.write_text(json.dumps(payload), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
