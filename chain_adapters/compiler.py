"""py-solc-x driver: solc resolution, standard-json compile, artifact cache.

Why we resolve every import ourselves instead of letting solc read the filesystem: the cache key
must cover *everything* the compiler sees (our sources and every OpenZeppelin file they pull in),
so the standard-json input we hash is the complete input, with all sources inlined. The same
input then compiles identically under a native solc and under the solc-js wrapper, with no
`--allow-paths` differences between them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import solcx
from solcx.exceptions import SolcError
from solcx.install import get_executable

from chain_adapters.exceptions import CompileError, SolcNotFound
from chain_adapters.paths import (
    CONTRACTS_DIR,
    FIXTURE_CONTRACTS_DIR,
    NODE_MODULES,
    PROJECT_ROOT,
    SOLCJS_WRAPPER,
)

logger = logging.getLogger(__name__)

SOLC_VERSION = "0.8.28"
EVM_VERSION = "cancun"
OPTIMIZER_RUNS = 200
DEFAULT_CACHE_DIR = PROJECT_ROOT / ".credagg" / "cache" / "solc"
_SOLC_DOWNLOAD_HOST = "binaries.soliditylang.org"

_IMPORT_RE = re.compile(
    r"""^\s*import\s+(?:[^;"']*?\s+from\s+)?["']([^"']+)["']\s*;""", re.MULTILINE
)
_COMMENT_RE = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)


@dataclass(frozen=True)
class ContractArtifact:
    """One compiled contract: what deployment, adapters and the verifier need."""

    name: str
    source: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    metadata: str

    @property
    def qualified_name(self) -> str:
        return f"{self.source}:{self.name}"

    @property
    def deployable(self) -> bool:
        """False for interfaces and abstract contracts (no creation code)."""
        return len(self.bytecode) > 2

    @property
    def runtime_size(self) -> int:
        return (len(self.deployed_bytecode) - 2) // 2


@dataclass
class CompiledProject:
    input_hash: str
    cache_hit: bool
    solc: str
    artifacts: dict[str, ContractArtifact] = field(default_factory=dict)

    def get(self, name: str) -> ContractArtifact:
        """Look up by short name (must be unique) or by `path:Name`."""
        if name in self.artifacts:
            return self.artifacts[name]
        matches = [a for a in self.artifacts.values() if a.name == name]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise KeyError(f"no compiled contract named {name!r}")
        raise KeyError(f"{name!r} is ambiguous: {[m.qualified_name for m in matches]}")

    def ours(self) -> list[ContractArtifact]:
        """Contracts from our own trees, not from node_modules."""
        return [a for a in self.artifacts.values() if not a.source.startswith("@")]


# --- solc resolution -------------------------------------------------------------------------


@dataclass(frozen=True)
class SolcExecutable:
    path: str
    how: str  # which resolution step found it


def _solc_version_of(path: str) -> str | None:
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"Version:\s*(\d+\.\d+\.\d+)", out)
    return match.group(1) if match else None


def _download_host_reachable(timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((_SOLC_DOWNLOAD_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


@lru_cache(maxsize=1)
def resolve_solc(version: str = SOLC_VERSION) -> SolcExecutable:
    """SOLC_BINARY -> installed py-solc-x version -> install_solc -> the solc-js wrapper.

    A native compiler is preferred because it is ~10x faster than WebAssembly; all four produce
    the same bytecode for the same version, which is why the cache key does not depend on which
    one was found.
    """
    explicit = os.environ.get("SOLC_BINARY")
    if explicit:
        found = _solc_version_of(explicit)
        if found != version:
            raise SolcNotFound(
                f"SOLC_BINARY={explicit} reports version {found}, but the project pins {version}"
            )
        return SolcExecutable(explicit, "SOLC_BINARY")
    try:
        if any(str(v) == version for v in solcx.get_installed_solc_versions()):
            return SolcExecutable(str(get_executable(version)), "py-solc-x installed")
    except SolcError as exc:
        logger.debug("no py-solc-x installed compilers: %s", exc)
    if os.environ.get("CREDAGG_SOLC_NO_DOWNLOAD") != "1" and _download_host_reachable():
        try:
            solcx.install_solc(version)
            return SolcExecutable(str(get_executable(version)), "py-solc-x install_solc")
        except Exception as exc:  # any download failure falls through to solc-js
            logger.warning("solcx.install_solc(%s) failed: %s", version, exc)
    if SOLCJS_WRAPPER.exists() and (NODE_MODULES / "solc").exists():
        found = _solc_version_of(str(SOLCJS_WRAPPER))
        if found == version:
            return SolcExecutable(str(SOLCJS_WRAPPER), "solc-js wrapper")
        raise SolcNotFound(
            f"solc-js in contracts/node_modules is {found}, the project pins {version}"
        )
    raise SolcNotFound(
        f"no solc {version}: set SOLC_BINARY, or run `npm ci` in contracts/ for the solc-js wrapper"
    )


# --- sources -----------------------------------------------------------------------------------


def default_source_roots() -> list[Path]:
    return [CONTRACTS_DIR, FIXTURE_CONTRACTS_DIR]


def discover_sources(roots: Iterable[Path]) -> dict[str, Path]:
    """Every .sol file under the roots, keyed by its path relative to the project root."""
    found: dict[str, Path] = {}
    for root in roots:
        if not root.exists():
            continue
        for path in sorted(root.rglob("*.sol")):
            if "node_modules" in path.parts:
                continue
            found[_unit_name(path)] = path
    return found


def _unit_name(path: Path) -> str:
    try:
        return path.resolve().relative_to(PROJECT_ROOT.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def _resolve_import(importer: str, target: str) -> str:
    if target.startswith("./") or target.startswith("../"):
        parts = importer.split("/")[:-1]
        for piece in target.split("/"):
            if piece == "..":
                if not parts:
                    raise CompileError(
                        file=importer,
                        line=None,
                        message=f"import {target!r} escapes the root",
                        formatted="",
                    )
                parts.pop()
            elif piece != ".":
                parts.append(piece)
        return "/".join(parts)
    return target


def _read_unit(unit: str, own: Mapping[str, Path]) -> str:
    if unit in own:
        return own[unit].read_text(encoding="utf-8")
    for base in (NODE_MODULES, PROJECT_ROOT):
        candidate = base / unit
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    raise FileNotFoundError(unit)


def collect_sources(own: Mapping[str, Path]) -> dict[str, str]:
    """Our sources plus the transitive closure of their imports, as unit name -> content."""
    contents: dict[str, str] = {}
    pending = list(own)
    importers: dict[str, str] = {}
    while pending:
        unit = pending.pop()
        if unit in contents:
            continue
        try:
            text = _read_unit(unit, own)
        except FileNotFoundError:
            importer = importers.get(unit, unit)
            line = _line_of_import(contents.get(importer, ""), unit)
            raise CompileError(
                file=importer,
                line=line,
                message=f'Source "{unit}" not found (is `npm ci` done in contracts/?)',
                formatted="",
            ) from None
        contents[unit] = text
        for target in _IMPORT_RE.findall(_COMMENT_RE.sub("", text)):
            resolved = _resolve_import(unit, target)
            importers.setdefault(resolved, unit)
            pending.append(resolved)
    return dict(sorted(contents.items()))


def _line_of_import(text: str, unit: str) -> int | None:
    name = unit.rsplit("/", 1)[-1]
    for number, line in enumerate(text.splitlines(), start=1):
        if "import" in line and name in line:
            return number
    return None


def standard_json_input(sources: Mapping[str, str]) -> dict[str, Any]:
    return {
        "language": "Solidity",
        "sources": {unit: {"content": text} for unit, text in sources.items()},
        "settings": {
            "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
            "evmVersion": EVM_VERSION,
            "outputSelection": {
                "*": {
                    "*": [
                        "abi",
                        "metadata",
                        "evm.bytecode.object",
                        "evm.deployedBytecode.object",
                    ]
                }
            },
        },
    }


def input_hash(standard_input: Mapping[str, Any], version: str = SOLC_VERSION) -> str:
    blob = json.dumps(standard_input, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(version.encode() + b"\0" + blob).hexdigest()


# --- compile -----------------------------------------------------------------------------------


def compile_project(
    roots: Iterable[Path] | None = None,
    *,
    cache_dir: Path | None = None,
    use_cache: bool = True,
) -> CompiledProject:
    """Compile every contract under the roots (default: contracts/ and hardhat_fixtures/)."""
    own = discover_sources(default_source_roots() if roots is None else roots)
    sources = collect_sources(own)
    standard_input = standard_json_input(sources)
    key = input_hash(standard_input)
    cache_file = (cache_dir or DEFAULT_CACHE_DIR) / f"{key}.json"
    if use_cache and cache_file.is_file():
        try:
            cached = json.loads(cache_file.read_text(encoding="utf-8"))
            return _project_from(cached["artifacts"], key, cache_hit=True, solc=cached["solc"])
        except (ValueError, KeyError, TypeError):
            cache_file.unlink(missing_ok=True)  # a torn or foreign file: recompile
    solc = resolve_solc()
    output = _run_solc(standard_input, solc)
    _raise_on_errors(output, sources)
    artifacts = _artifacts_from(output)
    if use_cache:
        _write_atomically(
            cache_file,
            json.dumps({"solc": f"{solc.how}: {solc.path}", "artifacts": artifacts}),
        )
    return _project_from(artifacts, key, cache_hit=False, solc=f"{solc.how}: {solc.path}")


def _run_solc(standard_input: dict[str, Any], solc: SolcExecutable) -> dict[str, Any]:
    try:
        result: dict[str, Any] = solcx.compile_standard(
            standard_input, solc_binary=solc.path, allow_empty=True
        )
        return result
    except SolcError as exc:
        # compile_standard raises on any error-severity entry; recover the JSON it carried.
        stdout = getattr(exc, "stdout_data", "") or ""
        try:
            parsed: dict[str, Any] = json.loads(stdout)
            return parsed
        except ValueError:
            raise CompileError(
                file="<solc>", line=None, message=str(exc).strip(), formatted=str(exc)
            ) from None


def _raise_on_errors(output: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if not errors:
        return
    first = errors[0]
    location = first.get("sourceLocation") or {}
    file = location.get("file", "<unknown>")
    line = None
    if file in sources and isinstance(location.get("start"), int) and location["start"] >= 0:
        line = sources[file].encode("utf-8")[: location["start"]].count(b"\n") + 1
    message = f"{first.get('type', 'Error')}: {first.get('message', '').strip()}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more error(s))"
    raise CompileError(
        file=file, line=line, message=message, formatted=first.get("formattedMessage", "")
    )


def _artifacts_from(output: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    artifacts: dict[str, dict[str, Any]] = {}
    for source, contracts in output.get("contracts", {}).items():
        for name, data in contracts.items():
            evm = data.get("evm", {})
            artifacts[f"{source}:{name}"] = {
                "name": name,
                "source": source,
                "abi": data.get("abi", []),
                "bytecode": "0x" + evm.get("bytecode", {}).get("object", ""),
                "deployed_bytecode": "0x" + evm.get("deployedBytecode", {}).get("object", ""),
                "metadata": data.get("metadata", ""),
            }
    return artifacts


def _project_from(
    artifacts: Mapping[str, Mapping[str, Any]], key: str, *, cache_hit: bool, solc: str
) -> CompiledProject:
    return CompiledProject(
        input_hash=key,
        cache_hit=cache_hit,
        solc=solc,
        artifacts={k: ContractArtifact(**v) for k, v in artifacts.items()},
    )


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def compile_timed(**kwargs: Any) -> tuple[CompiledProject, float]:
    started = time.perf_counter()
    project = compile_project(**kwargs)
    return project, time.perf_counter() - started
