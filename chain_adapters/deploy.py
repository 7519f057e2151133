"""Deterministic deployment through the Arachnid CREATE2 proxy, with a per-chain manifest.

Why CREATE2: the same contract gets the same address on every chain (an auditor checks one
address everywhere), the address is known before anything is sent, and re-running a deployment
is a no-op instead of a duplicate. The proxy (0x4e59b448...956C) exists at the same address on
most EVM chains because it is deployed by a keyless, pre-signed, pre-EIP-155 transaction; where
it is missing we send that same transaction (after funding its one-time deployer).

    salt      = keccak256(utf8(project_salt + ":" + salt_label))     (salt_label: contract name)
    init_code = creation bytecode ++ abi.encode(constructor args)
    address   = keccak256(0xff ++ proxy ++ salt ++ keccak256(init_code))[12:]

The proxy is `msg.sender` of every constructor: constructors must take the admin address as
an argument (granting roles to msg.sender would grant them to the proxy, i.e. to nobody).

Runtime-code check. Immutables put constructor-time values into the runtime code, so the
artifact's deployed bytecode is not what lands on chain. The expected runtime code is therefore
obtained by simulating the very same CREATE2 in an `eth_call` whose state override replaces the
proxy's code with a 30-byte helper that runs CREATE2 and returns the created code: same deployer,
same salt, same address(this), so even EIP-712 domain separators cached in immutables match.
Nodes without state overrides get a plain creation simulation from the proxy address, which is
exact unless an immutable depends on address(this); the mismatch is then reported, not ignored.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from eth_utils import keccak, to_checksum_address
from web3.exceptions import Web3RPCError

from chain_adapters.base import RawTx, WaitFor
from chain_adapters.evm.adapter import EvmAdapter
from chain_adapters.evm.convert import as_bytes, hex0x
from chain_adapters.exceptions import ChainError, DeploymentError

CREATE2_PROXY = "0x4e59b44847b379578588920cA78FbF26c0B4956C"
CREATE2_PROXY_DEPLOYER = "0x3fAB184622Dc19b6109349B94811493BF2a45362"
# From github.com/Arachnid/deterministic-deployment-proxy: gas price 100 gwei, gas 100000, v=27.
CREATE2_PROXY_PRESIGNED_TX = bytes.fromhex(
    "f8a58085174876e800830186a08080b853604580600e600039806000f350fe7fffffffffffffffffffffffffff"
    "ffffffffffffffffffffffffffffffffffffe03601600081602082378035828234f58015156039578182fd5b80"
    "82525050506014600cf31ba022222222222222222222222222222222222222222222222222222222222222"
    "22a02222222222222222222222222222222222222222222222222222222222222222"
)
CREATE2_PROXY_RUNTIME = bytes.fromhex(
    "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffe03601600081602082378035"
    "828234f58015156039578182fd5b8082525050506014600cf3"
)
CREATE2_PROXY_DEPLOY_COST = 100_000 * 100 * 10**9  # gas limit x gas price of the presigned tx

# Runtime helper for the simulation (see module docstring). calldata = salt ++ init_code;
# copies init_code to memory, CREATE2s it, returns the new account's code (empty on failure).
#   PUSH1 32 CALLDATASIZE SUB DUP1 PUSH1 32 PUSH1 0 CALLDATACOPY     mem[0:len] = init_code
#   PUSH1 0 CALLDATALOAD DUP2 PUSH1 0 PUSH1 0 CREATE2               addr = create2(0,0,len,salt)
#   DUP1 EXTCODESIZE DUP1 PUSH1 0 DUP1 DUP5 EXTCODECOPY             mem[0:size] = code(addr)
#   PUSH1 0 RETURN                                                  return mem[0:size]
_SIMULATE_CREATE2 = bytes.fromhex("602036038060206000376000358160006000f5803b80600080843c6000f3")

DEFAULT_PROJECT_SALT = "credagg/v1"
MANIFEST_VERSION = 1


class DeployableArtifact(Protocol):
    """What deployment needs of a compiled contract (compiler.ContractArtifact fits)."""

    @property
    def name(self) -> str: ...

    @property
    def abi(self) -> Any: ...

    @property
    def bytecode(self) -> str: ...


@dataclass(frozen=True, slots=True)
class DeployedContract:
    """One manifest entry."""

    label: str
    contract: str
    chain_id: int
    address: str
    salt: str
    init_code_hash: str
    runtime_code_hash: str
    tx_hash: str | None
    block_number: int | None
    created: bool  # False when the code was already there (re-run: no transaction sent)


@dataclass(frozen=True, slots=True)
class Ref:
    """A constructor argument meaning "the address of the plan step named `name`"."""

    name: str


@dataclass(frozen=True, slots=True)
class PlanStep:
    name: str  # also the salt label: one address per name
    artifact: DeployableArtifact
    args: tuple[Any, ...] = ()


# -- pure address arithmetic -------------------------------------------------------------------


def derive_salt(salt_label: str, *, project_salt: str = DEFAULT_PROJECT_SALT) -> bytes:
    return keccak(text=f"{project_salt}:{salt_label}")


def create2_address(deployer: str, salt: bytes, init_code_hash: bytes) -> str:
    digest = keccak(b"\xff" + as_bytes(deployer) + salt + init_code_hash)
    return to_checksum_address(digest[12:])


# -- the proxy -----------------------------------------------------------------------------------


def ensure_create2_proxy(adapter: EvmAdapter) -> bool:
    """Make sure the proxy exists; deploy it from its presigned transaction if not.

    Returns True if it had to be deployed. Needs the adapter's signer to fund the one-time
    deployer account with 0.01 ETH, and a chain that accepts pre-EIP-155 transactions with a
    100 gwei gas price.
    """
    code = adapter.get_code(CREATE2_PROXY)
    if code:
        if code != CREATE2_PROXY_RUNTIME:
            raise DeploymentError(
                f"{CREATE2_PROXY} holds unexpected code; refusing to deploy through it",
                chain=adapter.chain.name,
            )
        return False
    if adapter.transaction_count(CREATE2_PROXY_DEPLOYER) != 0:
        raise DeploymentError(
            f"the proxy deployer {CREATE2_PROXY_DEPLOYER} has already used nonce 0 on this chain "
            "without creating the proxy; it cannot exist at the canonical address here",
            chain=adapter.chain.name,
        )
    shortfall = CREATE2_PROXY_DEPLOY_COST - adapter.get_balance(CREATE2_PROXY_DEPLOYER)
    if shortfall > 0:
        adapter.send(RawTx(to=CREATE2_PROXY_DEPLOYER, value=shortfall), label="create2-proxy:fund")
    try:
        adapter.send_presigned(CREATE2_PROXY_PRESIGNED_TX)
    except (Web3RPCError, ChainError) as exc:
        raise DeploymentError(
            f"the presigned CREATE2 proxy deployment was refused ({exc}); the chain may reject "
            "pre-EIP-155 transactions or a 100 gwei gas price",
            chain=adapter.chain.name,
        ) from exc
    if adapter.get_code(CREATE2_PROXY) != CREATE2_PROXY_RUNTIME:
        raise DeploymentError("the proxy deployment left unexpected code", chain=adapter.chain.name)
    return True


# -- deployment ----------------------------------------------------------------------------------


def deploy_contract(
    adapter: EvmAdapter,
    artifact: DeployableArtifact,
    args: Sequence[Any] = (),
    salt_label: str | None = None,
    *,
    project_salt: str = DEFAULT_PROJECT_SALT,
    manifest_dir: Path | None = None,
    wait: WaitFor = "final",
) -> DeployedContract:
    """Deploy (or find) `artifact` at its CREATE2 address; record it in the manifest if asked."""
    label = salt_label or artifact.name
    salt = derive_salt(label, project_salt=project_salt)
    init_code = adapter.init_code(artifact.bytecode, abi=artifact.abi, args=args)
    init_code_hash = keccak(init_code)
    address = create2_address(CREATE2_PROXY, salt, init_code_hash)
    previous = _manifest_entry(manifest_dir, adapter, label) if manifest_dir else None

    ensure_create2_proxy(adapter)
    expected_runtime = _expected_runtime(adapter, salt, init_code, address)
    code = adapter.get_code(address)
    tx_hash: str | None = None
    block_number: int | None = None
    if code:
        created = False
        if previous is not None and previous.address == address:
            tx_hash, block_number = previous.tx_hash, previous.block_number
    else:
        created = True
        receipt = adapter.send(
            RawTx(to=CREATE2_PROXY, data=salt + init_code, abi=artifact.abi),
            label=f"deploy:{label}",
            wait=wait,
        )
        tx_hash, block_number = receipt.transaction_hash, receipt.block_number
        code = adapter.get_code(address)
        if not code:
            raise DeploymentError(
                f"{label}: transaction {tx_hash} succeeded but {address} has no code",
                chain=adapter.chain.name,
            )
    runtime_hash = keccak(code)
    if expected_runtime is not None and runtime_hash != keccak(expected_runtime):
        raise DeploymentError(
            f"{label}: code at {address} (hash {hex0x(runtime_hash)}) differs from the code its "
            f"init code produces (hash {hex0x(keccak(expected_runtime))})",
            chain=adapter.chain.name,
        )
    deployed = DeployedContract(
        label=label,
        contract=artifact.name,
        chain_id=adapter.chain_id,
        address=address,
        salt=hex0x(salt),
        init_code_hash=hex0x(init_code_hash),
        runtime_code_hash=hex0x(runtime_hash),
        tx_hash=tx_hash,
        block_number=block_number,
        created=created,
    )
    adapter.register_abi(artifact.abi)
    if manifest_dir is not None:
        record_deployment(manifest_dir, adapter.chain.name, deployed)
    return deployed


def deploy_plan(
    adapter: EvmAdapter,
    plan: Sequence[PlanStep],
    *,
    project_salt: str = DEFAULT_PROJECT_SALT,
    manifest_dir: Path | None = None,
    wait: WaitFor = "final",
) -> dict[str, DeployedContract]:
    """Deploy steps in order; `Ref(name)` arguments become earlier steps' addresses."""
    deployed: dict[str, DeployedContract] = {}
    for step in plan:
        if step.name in deployed:
            raise DeploymentError(
                f"plan step {step.name!r} appears twice", chain=adapter.chain.name
            )
        args = tuple(_resolve(arg, deployed, adapter) for arg in step.args)
        deployed[step.name] = deploy_contract(
            adapter,
            step.artifact,
            args,
            step.name,
            project_salt=project_salt,
            manifest_dir=manifest_dir,
            wait=wait,
        )
    return deployed


def predict_address(
    adapter: EvmAdapter,
    artifact: DeployableArtifact,
    args: Sequence[Any] = (),
    salt_label: str | None = None,
    *,
    project_salt: str = DEFAULT_PROJECT_SALT,
) -> str:
    """The CREATE2 address `deploy_contract` would use (no RPC call)."""
    salt = derive_salt(salt_label or artifact.name, project_salt=project_salt)
    init_code = adapter.init_code(artifact.bytecode, abi=artifact.abi, args=args)
    return create2_address(CREATE2_PROXY, salt, keccak(init_code))


def _resolve(arg: Any, deployed: Mapping[str, DeployedContract], adapter: EvmAdapter) -> Any:
    if isinstance(arg, Ref):
        if arg.name not in deployed:
            raise DeploymentError(
                f"argument refers to {arg.name!r}, which is not an earlier plan step",
                chain=adapter.chain.name,
            )
        return deployed[arg.name].address
    if isinstance(arg, list | tuple):
        return type(arg)(_resolve(a, deployed, adapter) for a in arg)
    return arg


def _expected_runtime(
    adapter: EvmAdapter, salt: bytes, init_code: bytes, address: str
) -> bytes | None:
    """The runtime code this CREATE2 produces, by simulation (see module docstring)."""
    override = {
        CREATE2_PROXY: {"code": hex0x(_SIMULATE_CREATE2)},
        address: {"code": "0x", "nonce": "0x0"},  # simulate as if not yet deployed
    }
    call = {"to": CREATE2_PROXY, "data": salt + init_code}
    try:
        result = bytes(adapter.w3.eth.call(call, "latest", override))  # type: ignore[arg-type]
    except Web3RPCError:
        try:  # no state overrides: plain creation simulation with the proxy as msg.sender
            result = bytes(
                adapter.w3.eth.call({"from": CREATE2_PROXY, "data": init_code})  # type: ignore[typeddict-item]
            )
        except Web3RPCError:
            return None
    if not result:
        raise DeploymentError(
            f"simulating the deployment of {address} returned no code: the constructor reverts "
            "(check its arguments; the proxy becomes msg.sender)",
            chain=adapter.chain.name,
        )
    return result


# -- manifest ------------------------------------------------------------------------------------


def manifest_path(manifest_dir: Path, chain_name: str) -> Path:
    return manifest_dir / "deployments" / f"{chain_name}.json"


def load_manifest(manifest_dir: Path, chain_name: str) -> dict[str, Any]:
    path = manifest_path(manifest_dir, chain_name)
    if not path.exists():
        return {}
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def record_deployment(manifest_dir: Path, chain_name: str, deployed: DeployedContract) -> Path:
    """Add/replace one entry; read-modify-write under a file lock, written atomically."""
    path = manifest_path(manifest_dir, chain_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(path.with_suffix(".lock")):
        manifest = load_manifest(manifest_dir, chain_name) or {
            "version": MANIFEST_VERSION,
            "chain": chain_name,
            "chain_id": deployed.chain_id,
            "create2_proxy": CREATE2_PROXY,
            "contracts": {},
        }
        if manifest.get("chain_id") != deployed.chain_id:
            raise DeploymentError(
                f"{path} is for chain id {manifest.get('chain_id')}, not {deployed.chain_id}",
                chain=chain_name,
            )
        entry = asdict(deployed)
        entry.pop("created")
        entry.pop("label")
        entry.pop("chain_id")
        manifest["contracts"][deployed.label] = entry
        _write_atomically(path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def _manifest_entry(manifest_dir: Path, adapter: EvmAdapter, label: str) -> DeployedContract | None:
    """The recorded entry for `label`; refuses, before anything is sent, another chain's file."""
    manifest = load_manifest(manifest_dir, adapter.chain.name)
    if manifest and manifest.get("chain_id") != adapter.chain_id:
        raise DeploymentError(
            f"{manifest_path(manifest_dir, adapter.chain.name)} is for chain id "
            f"{manifest.get('chain_id')}, not {adapter.chain_id}",
            chain=adapter.chain.name,
        )
    entry = manifest.get("contracts", {}).get(label)
    if entry is None:
        return None
    return DeployedContract(label=label, chain_id=adapter.chain_id, created=False, **entry)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = [
    "CREATE2_PROXY",
    "DEFAULT_PROJECT_SALT",
    "DeployedContract",
    "PlanStep",
    "Ref",
    "create2_address",
    "deploy_contract",
    "deploy_plan",
    "derive_salt",
    "ensure_create2_proxy",
    "load_manifest",
    "predict_address",
    "record_deployment",
]
