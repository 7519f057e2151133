"""The auditor's verifier: checks a proof bundle (or two checkpoints) trusting nothing of ours.

What it trusts: the public key the auditor pins, and the RPC endpoints the auditor chooses. What
it checks, each reported by name so a failure says exactly what is wrong:

- `commitment`: SHA-256("credagg-receipt/v1" || salt || JCS(receipt)) is the value that was
  signed or included (if neither accepts it, the receipt or the salt was altered);
- `issuance_signature`, `checkpoint_signature`: Ed25519 against the pinned key. The pinned key is
  required, offline or not: a key taken from the bundle would prove nothing, and a verifier that
  silently skipped signatures would report "valid" for anything the bundle says of itself;
- `inclusion`: the RFC 9162 audit path leads from the leaf to the signed root at the signed size;
- `anchor:<chain id>`: `rootAt(size)` read from the chain at its `finalized` block (at `latest`
  only where the node has no finalized tag) equals the signed root, and the bundle's claims about
  the anchoring transaction (status, block number and hash, contract, `Anchored` event) are true.

Warnings never change the outcome. `included_late`: the issuance signature promised inclusion by
`include_by`, and the earliest inclusion this bundle shows is later: the signed checkpoint's time,
or (reading chains) the block time of every matching anchor. A bundle proving against a later
checkpoint than the first that included the receipt can show late inclusion of a timely receipt:
the warning says what the bundle shows, not more.

Outcome: `invalid` (exit 1) if any check fails; `valid` (exit 0) if none fails and at least one
anchor on a reachable chain matches (or `offline`, which skips chain reads and says so);
`not_anchored` (exit 2) otherwise: no anchor yet, not yet final, or no chain could be reached.
An endpoint that is down is reported but cannot turn a valid result invalid: one matching final
anchor is proof enough, and a silent chain is not evidence against it. A chain that *answers*
with a different root always fails the bundle, whatever the other chains say (a split view).

Chain reads are raw JSON-RPC over httpx (`eth_call` with hand-encoded calldata), so an auditor
needs neither web3 nor anything else of ours. Imports: standard library, httpx, receipts core.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from backend.receipts.bundle import Anchor, CheckpointFile, ConsistencyProof, ProofBundle
from backend.receipts.commitment import commitment, leaf_hash
from backend.receipts.merkle import verify_consistency, verify_inclusion
from backend.receipts.signing import (
    Signature,
    SignedCheckpoint,
    epoch_micros,
    format_timestamp,
    verify_checkpoint,
    verify_commitment_signature,
)

__all__ = [
    "ANCHORED_TOPIC",
    "ROOT_AT_SELECTOR",
    "Check",
    "Result",
    "VerificationReport",
    "verify_bundle",
    "verify_consistency_checkpoints",
]

# keccak256("rootAt(uint64)")[:4] and keccak256("Anchored(uint64,bytes32,uint64,bytes32)"),
# written out so the verifier needs no keccak implementation (a test recomputes both).
ROOT_AT_SELECTOR = bytes.fromhex("eaa38b41")
ANCHORED_TOPIC = bytes.fromhex("5c88edbb750cf126ecd9bd52fe85b66c964716e388eca2e85a083b03bc1c11cd")
ZERO_ROOT = bytes(32)

Result = Literal["valid", "invalid", "not_anchored"]
Status = Literal["pass", "fail", "pending", "skipped"]
EXIT_CODES: dict[str, int] = {"valid": 0, "invalid": 1, "not_anchored": 2}


@dataclass(frozen=True)
class Check:
    """One named check. `pending` and `skipped` neither pass nor fail (see module docstring)."""

    name: str
    status: Status
    detail: str

    @property
    def ok(self) -> bool:
        return self.status == "pass"

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "status": self.status, "detail": self.detail}


@dataclass
class VerificationReport:
    """Every check made, the outcome they add up to, and notes on what was not checked."""

    result: Result
    checks: list[Check]
    notes: list[str] = field(default_factory=list)
    subject: dict[str, object] = field(default_factory=dict)
    warnings: list[dict[str, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.result]

    @property
    def failed(self) -> list[str]:
        return [check.name for check in self.checks if check.status == "fail"]

    def to_json(self) -> dict[str, object]:
        return {
            "result": self.result,
            "exit_code": self.exit_code,
            "failed": self.failed,
            "checks": [check.to_json() for check in self.checks],
            "notes": self.notes,
            "warnings": self.warnings,
            **self.subject,
        }


# ------------------------------------------------------------------------------------ bundles


def verify_bundle(
    bundle: ProofBundle,
    *,
    pubkey: bytes | None,
    rpc_urls: Sequence[str] = (),
    offline: bool = False,
    timeout: float = 5.0,
    rpc: RpcClient | None = None,
) -> VerificationReport:
    """Verify every claim of `bundle`; see the module docstring for the checks and outcomes.

    Pass one `rpc` client to verify many bundles against one snapshot of the chains (each
    distinct read is made once); by default every call reads afresh.
    """
    client = rpc if rpc is not None else RpcClient(timeout)
    checks: list[Check] = []
    notes: list[str] = []
    value = commitment(bundle.receipt, bundle.salt)
    leaf = leaf_hash(value)
    signed = _issuance_check(pubkey, value, bundle.issuance, bundle.receipt.get("issued_at"))
    included = _inclusion_check(bundle, leaf)
    if signed.ok or included.ok:
        checks.append(Check("commitment", "pass", f"commitment 0x{value.hex()}"))
    else:
        checks.append(
            Check(
                "commitment",
                "fail",
                f"neither the issuance signature nor the audit path accepts commitment "
                f"0x{value.hex()}: the receipt or the salt is not what was committed",
            )
        )
    checks += [signed, _checkpoint_check("checkpoint_signature", pubkey, bundle.checkpoint)]
    checks.append(included)
    anchor_times: list[int] = []
    anchored = _anchor_checks(
        "anchor",
        bundle.anchors,
        bundle.checkpoint,
        rpc_urls=rpc_urls,
        offline=offline,
        rpc=client,
        notes=notes,
        anchor_times=anchor_times,
    )
    checks += anchored
    warnings = _late_inclusion(bundle, anchor_times)
    report = VerificationReport(
        _outcome(checks, [anchored], offline, notes),
        checks,
        notes,
        {
            "leaf_index": bundle.leaf_index,
            "tree_size": bundle.tree_size,
            "root": "0x" + bundle.checkpoint.root.hex(),
            "issuer_key_id": bundle.issuer_key_id,
            "issued_at": format_timestamp(bundle.issuance.issued_at),
            "include_by": format_timestamp(bundle.issuance.include_by),
            "included_late": bool(warnings),
        },
        warnings,
    )
    return report


def _late_inclusion(bundle: ProofBundle, anchor_times: Sequence[int]) -> list[dict[str, str]]:
    """`included_late` warnings: the checkpoint, or every matching anchor, is after include_by.

    Times compare in whole seconds (checkpoints and blocks carry no finer time), so a promise is
    only called broken once a full second past it.
    """
    deadline = epoch_micros(bundle.issuance.include_by) // 1_000_000
    promised = format_timestamp(bundle.issuance.include_by)
    warnings = []
    if bundle.checkpoint.timestamp > deadline:
        warnings.append(
            {
                "code": "included_late",
                "detail": f"the checkpoint of size {bundle.checkpoint.size} is signed at "
                f"{_utc(bundle.checkpoint.timestamp)}, after the promised include_by {promised}",
            }
        )
    if anchor_times and min(anchor_times) > deadline:
        warnings.append(
            {
                "code": "included_late",
                "detail": f"the earliest matching anchor is in a block of {_utc(min(anchor_times))}"
                f", after the promised include_by {promised}",
            }
        )
    return warnings


def _utc(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _issuance_check(
    pubkey: bytes | None, value: bytes, signature: Signature, receipt_issued_at: object
) -> Check:
    if pubkey is None:
        return _no_key("issuance_signature")
    signed_at = format_timestamp(signature.issued_at)
    if receipt_issued_at != signed_at:
        return Check(
            "issuance_signature",
            "fail",
            f"the signature is for issued_at {signed_at}, the receipt says {receipt_issued_at!r}",
        )
    if verify_commitment_signature(pubkey, value, signature):
        return Check("issuance_signature", "pass", f"signed by key {signature.key_id}")
    return Check(
        "issuance_signature",
        "fail",
        f"signature (key id {signature.key_id}) does not verify under the pinned key",
    )


def _checkpoint_check(name: str, pubkey: bytes | None, checkpoint: SignedCheckpoint) -> Check:
    if pubkey is None:
        return _no_key(name)
    what = f"size {checkpoint.size}, root 0x{checkpoint.root.hex()}"
    if verify_checkpoint(pubkey, checkpoint):
        return Check(name, "pass", f"{what}, signed by key {checkpoint.key_id}")
    return Check(name, "fail", f"signature over ({what}) does not verify under the pinned key")


def _no_key(name: str) -> Check:
    return Check(
        name,
        "fail",
        "no pinned public key given (--pubkey): a key taken from the bundle would prove nothing",
    )


def _inclusion_check(bundle: ProofBundle, leaf: bytes) -> Check:
    if bundle.tree_size != bundle.checkpoint.size:
        return Check(
            "inclusion",
            "fail",
            f"tree_size {bundle.tree_size} is not the signed checkpoint's size "
            f"{bundle.checkpoint.size}",
        )
    if verify_inclusion(
        leaf, bundle.leaf_index, bundle.tree_size, bundle.audit_path, bundle.checkpoint.root
    ):
        return Check(
            "inclusion", "pass", f"leaf {bundle.leaf_index} of {bundle.tree_size} reaches the root"
        )
    return Check(
        "inclusion",
        "fail",
        f"the audit path does not lead from leaf {bundle.leaf_index} to the checkpoint root "
        f"at size {bundle.tree_size}",
    )


def _outcome(
    checks: Sequence[Check],
    anchor_groups: Sequence[Sequence[Check]],
    offline: bool,
    notes: list[str],
) -> Result:
    """Fail closed: any failure is invalid; `valid` needs a matching anchor in every group."""
    if any(check.status == "fail" for check in checks):
        return "invalid"
    if offline:
        notes.append("offline: no chain was read, so anchoring was not verified")
        return "valid"
    if all(any(check.ok for check in group) for group in anchor_groups):
        return "valid"
    notes.append("no matching final anchor could be read for every root; try again later")
    return "not_anchored"


# -------------------------------------------------------------------------------- consistency


def verify_consistency_checkpoints(
    old: CheckpointFile,
    new: CheckpointFile,
    proof: ConsistencyProof | None,
    pubkey: bytes | None,
    rpc_urls: Sequence[str] = (),
    *,
    offline: bool = False,
    timeout: float = 5.0,
    rpc: RpcClient | None = None,
) -> VerificationReport:
    """Whether the log at `new` only appended to the log at `old` (RFC 9162 consistency).

    The proof is `proof` if given, else the one embedded in `new`. Both checkpoints must be
    signed by the pinned key and, unless `offline`, each root anchored on a reachable chain.
    """
    client = rpc if rpc is not None else RpcClient(timeout)
    notes: list[str] = []
    checks = [
        _checkpoint_check("old_checkpoint_signature", pubkey, old.checkpoint),
        _checkpoint_check("new_checkpoint_signature", pubkey, new.checkpoint),
        _consistency_check(old.checkpoint, new.checkpoint, proof or new.consistency),
    ]
    groups = []
    for label, checkpoint_file in (("old", old), ("new", new)):
        group = _anchor_checks(
            f"anchor:{label}",
            checkpoint_file.anchors,
            checkpoint_file.checkpoint,
            rpc_urls=rpc_urls,
            offline=offline,
            rpc=client,
            notes=notes,
        )
        checks += group
        groups.append(group)
    return VerificationReport(
        _outcome(checks, groups, offline, notes),
        checks,
        notes,
        {"old_size": old.checkpoint.size, "new_size": new.checkpoint.size},
    )


def _consistency_check(
    old: SignedCheckpoint, new: SignedCheckpoint, proof: ConsistencyProof | None
) -> Check:
    if old.size > new.size:
        return Check("consistency", "fail", f"old size {old.size} exceeds new size {new.size}")
    if proof is None:
        if old.size == new.size and old.root == new.root:
            return Check("consistency", "pass", "same size, same root")
        return Check(
            "consistency",
            "fail",
            "no consistency proof given (embed one in the new checkpoint file or pass --proof)",
        )
    if (proof.first, proof.second) != (old.size, new.size):
        return Check(
            "consistency",
            "fail",
            f"the proof is from {proof.first} to {proof.second}, the checkpoints are "
            f"{old.size} and {new.size}",
        )
    if verify_consistency(old.size, new.size, old.root, new.root, list(proof.proof)):
        return Check("consistency", "pass", f"the log of {new.size} extends the log of {old.size}")
    return Check(
        "consistency",
        "fail",
        f"the proof does not show the tree of {old.size} is a prefix of the tree of {new.size}: "
        "the log was rewritten or the checkpoints are from different logs (split view)",
    )


# -------------------------------------------------------------------------------------- chains


class _RpcError(Exception):
    """The endpoint could not be reached or answered with an error or nonsense."""


_ids = itertools.count(1)


class RpcClient:
    """JSON-RPC reads for one verification run: one keep-alive connection per endpoint, and each
    distinct (endpoint, method, params) read made once, so the run sees one snapshot of each
    chain and verifying a thousand bundles of one checkpoint costs a handful of reads."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._http = httpx.Client(timeout=timeout)
        self._answers: dict[str, Any] = {}

    def call(self, url: str, method: str, params: list[Any]) -> Any:
        key = json.dumps([url, method, params], sort_keys=True)
        if key not in self._answers:
            self._answers[key] = self._request(url, method, params)
        return self._answers[key]

    def _request(self, url: str, method: str, params: list[Any]) -> Any:
        payload = {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": params}
        try:
            response = self._http.post(url, json=payload)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise _RpcError(f"{method}: {error or type(error).__name__}") from error
        if not isinstance(body, dict):
            raise _RpcError(f"{method}: not a JSON-RPC response")
        if "error" in body:
            raise _RpcError(f"{method}: {body['error']}")
        return body.get("result")


def _rpc(url: str, method: str, params: list[Any], rpc: RpcClient) -> Any:
    return rpc.call(url, method, params)


def _chain_ids(
    rpc_urls: Iterable[str], rpc: RpcClient, checks: list[Check]
) -> dict[int, list[str]]:
    urls: dict[int, list[str]] = {}
    for url in rpc_urls:
        try:
            chain_id = int(_rpc(url, "eth_chainId", [], rpc), 16)
        except (_RpcError, TypeError, ValueError) as error:
            checks.append(Check(f"rpc:{url}", "skipped", f"unreachable, not used: {error}"))
            continue
        urls.setdefault(chain_id, []).append(url)
    return urls


def _anchor_checks(
    prefix: str,
    anchors: Sequence[Anchor],
    checkpoint: SignedCheckpoint,
    *,
    rpc_urls: Sequence[str],
    offline: bool,
    rpc: RpcClient,
    notes: list[str],
    anchor_times: list[int] | None = None,
) -> list[Check]:
    """Check each listed anchor on each reachable chain; append to `anchor_times` the block
    time of every anchor that matched (for the late-inclusion warning)."""
    if offline:
        return [Check(f"{prefix}:{anchor.chain_id}", "skipped", "offline") for anchor in anchors]
    if not anchors:
        return [Check(prefix, "pending", f"no anchor listed for size {checkpoint.size} yet")]
    checks: list[Check] = []
    urls = _chain_ids(rpc_urls, rpc, checks)
    anchored_chains = {anchor.chain_id for anchor in anchors}
    for chain_id in sorted(urls.keys() - anchored_chains):
        notes.append(f"chain {chain_id} is reachable but no anchor in it was listed")
    for anchor in anchors:
        name = f"{prefix}:{anchor.chain_id}"
        if anchor.chain_id not in urls:
            checks.append(Check(name, "skipped", "no reachable --rpc URL for this chain"))
            continue
        for url in urls[anchor.chain_id]:
            try:
                check = _anchor_check(name, url, anchor, checkpoint, rpc)
                checks.append(check)
                if check.ok and anchor_times is not None:
                    anchor_times.append(_block_time(url, anchor.block_number, rpc))
            except _RpcError as error:
                checks.append(Check(name, "skipped", f"{url} failed mid-check: {error}"))
    return checks


def _anchor_check(
    name: str, url: str, anchor: Anchor, checkpoint: SignedCheckpoint, rpc: RpcClient
) -> Check:
    tag, block = _final_block(url, rpc)
    on_chain = _root_at(url, anchor.contract, checkpoint.size, block, rpc)
    where = f"rootAt({checkpoint.size}) at {anchor.contract}, {tag} block {int(block, 16)}"
    if on_chain not in (ZERO_ROOT, checkpoint.root):
        return Check(
            name,
            "fail",
            f"{where} is 0x{on_chain.hex()}, not the signed root 0x{checkpoint.root.hex()}: "
            "the chain holds a different root for this size (forged checkpoint or split view)",
        )
    tx = _rpc(url, "eth_getTransactionReceipt", ["0x" + anchor.tx_hash.hex()], rpc)
    problem = _tx_claims_problem(tx, anchor, checkpoint)
    if problem is not None and (tx is not None or on_chain == checkpoint.root):
        return Check(name, "fail", f"the bundle's anchor claims are false: {problem}")
    if on_chain == checkpoint.root:
        return Check(
            name, "pass", f"{where} equals the signed root (tx in block {anchor.block_number})"
        )
    if tx is None:
        return Check(
            name,
            "pending",
            f"{where} is unset and the anchor transaction is not "
            "mined (not sent yet, or dropped by a reorg)",
        )
    return Check(
        name,
        "pending",
        f"anchored in block {anchor.block_number}, not yet final ({tag} block is {int(block, 16)})",
    )


def _block_time(url: str, number: int, rpc: RpcClient) -> int:
    block = _rpc(url, "eth_getBlockByNumber", [hex(number), False], rpc)
    stamp = _int(block.get("timestamp")) if isinstance(block, dict) else None
    if stamp is None:
        raise _RpcError(f"block {number} has no timestamp")
    return stamp


def _final_block(url: str, rpc: RpcClient) -> tuple[str, str]:
    """The finalized block number (hex), or `latest` where the node has no finalized tag."""
    for tag in ("finalized", "latest"):
        try:
            block = _rpc(url, "eth_getBlockByNumber", [tag, False], rpc)
        except _RpcError:
            if tag == "latest":
                raise
            continue
        if isinstance(block, dict) and isinstance(block.get("number"), str):
            return tag, block["number"]
    raise _RpcError("eth_getBlockByNumber returned no block")


def _root_at(url: str, contract: str, size: int, block: str, rpc: RpcClient) -> bytes:
    calldata = ROOT_AT_SELECTOR + size.to_bytes(32, "big")  # ABI: uint64 is left-padded to 32
    result = _rpc(url, "eth_call", [{"to": contract, "data": "0x" + calldata.hex()}, block], rpc)
    if result == "0x":  # no code at the address: nothing is anchored there
        return ZERO_ROOT
    if not isinstance(result, str) or len(result) != 66:
        raise _RpcError(f"rootAt returned {result!r}, not one bytes32")
    return bytes.fromhex(result[2:])


def _tx_claims_problem(tx: object, anchor: Anchor, checkpoint: SignedCheckpoint) -> str | None:
    """What is false in the bundle's description of the anchoring transaction, if anything."""
    if not isinstance(tx, dict):
        return f"transaction 0x{anchor.tx_hash.hex()} not found on chain {anchor.chain_id}"
    if tx.get("status") != "0x1":
        return "the anchor transaction reverted"
    if _int(tx.get("blockNumber")) != anchor.block_number:
        return f"transaction is in block {_int(tx.get('blockNumber'))}, not {anchor.block_number}"
    if str(tx.get("blockHash", "")).lower() != "0x" + anchor.block_hash.hex():
        return f"block {anchor.block_number} has hash {tx.get('blockHash')}, not the claimed one"
    size_topic = "0x" + checkpoint.size.to_bytes(32, "big").hex()
    for log in tx.get("logs") or []:
        topics = [str(t).lower() for t in log.get("topics", [])]
        if (
            str(log.get("address", "")).lower() == anchor.contract
            and topics[:2] == ["0x" + ANCHORED_TOPIC.hex(), size_topic]
            and str(log.get("data", "")).lower().startswith("0x" + checkpoint.root.hex())
        ):
            return None
    return f"transaction emits no Anchored({checkpoint.size}, root) event from {anchor.contract}"


def _int(value: object) -> int | None:
    try:
        return int(str(value), 16)
    except ValueError:
        return None
