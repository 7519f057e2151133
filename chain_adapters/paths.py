"""Where the project's on-disk toolchain lives (npm packages under contracts/)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(os.environ.get("CREDAGG_ROOT", Path(__file__).resolve().parents[1]))
CONTRACTS_DIR = PROJECT_ROOT / "contracts"
FIXTURE_CONTRACTS_DIR = PROJECT_ROOT / "hardhat_fixtures"
NODE_MODULES = CONTRACTS_DIR / "node_modules"
SOLCJS_WRAPPER = CONTRACTS_DIR / "solc-standard-json.js"
ANVIL_NPM_BINARY = NODE_MODULES / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
