"""`credagg verify` and `credagg consistency`: the verifier as an auditor runs it.

Output is one JSON report on stdout, and the exit code carries the outcome so scripts need not
parse it: 0 valid, 1 invalid (the report's `failed` names the checks), 2 not yet anchored.
A bundle or key that cannot even be read is invalid (1) with a check naming the bad field:
exit 2 must keep meaning "come back later", never "your input is broken".

Register on the main app with `register(app)` (or `app.command("verify")(verify)` and
`app.command("consistency")(consistency)`). Nothing here touches the database or settings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from backend.receipts.bundle import (
    BundleError,
    ConsistencyProof,
    parse_bundle,
    parse_checkpoint_file,
    parse_consistency_proof,
)
from backend.receipts.verifier import (
    Check,
    RpcClient,
    VerificationReport,
    verify_bundle,
    verify_consistency_checkpoints,
)

__all__ = ["consistency", "load_pubkey", "register", "verify"]

RpcOption = Annotated[
    list[str] | None,
    typer.Option("--rpc", help="JSON-RPC URL of a chain the log is anchored on (repeatable)."),
]
PubkeyOption = Annotated[
    str | None,
    typer.Option(
        "--pubkey",
        help="The log's Ed25519 public key to pin: 64 hex digits, or a file holding them or a "
        "PEM public key. Required: signatures are never checked against a key from the bundle.",
    ),
]
OfflineOption = Annotated[
    bool, typer.Option("--offline", help="Skip chain reads (anchoring is then not verified).")
]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="Seconds per RPC request.")]


class PubkeyError(ValueError):
    """The --pubkey value is neither a 32-byte hex key nor a file holding one."""


def load_pubkey(value: str) -> bytes:
    """Raw 32-byte Ed25519 key from hex (0x optional), a file of hex, or a PEM file."""
    text = value
    path = Path(value)
    if path.is_file():
        data = path.read_bytes()
        if b"-----BEGIN" in data:
            key = load_pem_public_key(data)
            if not isinstance(key, Ed25519PublicKey):
                raise PubkeyError(f"{value}: not an Ed25519 public key")
            return key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        text = data.decode("ascii", errors="replace").strip()
    digits = text.removeprefix("0x")
    try:
        raw = bytes.fromhex(digits)
    except ValueError as error:
        raise PubkeyError(f"{value!r} is not hex and not a readable key file") from error
    if len(raw) != 32:
        raise PubkeyError(f"an Ed25519 public key is 32 bytes, got {len(raw)}")
    return raw


def verify(
    bundles: Annotated[
        list[Path], typer.Argument(help="Proof bundle(s) (credagg-proof JSON files).")
    ],
    rpc: RpcOption = None,
    pubkey: PubkeyOption = None,
    offline: OfflineOption = False,
    timeout: TimeoutOption = 5.0,
) -> None:
    """Verify receipts' proof bundles: commitment, signatures, inclusion, on-chain anchors.

    With several bundles every one is verified against the same snapshot of the chains (each
    distinct chain read is made once); the report lists each file and the exit code is the
    worst outcome: 1 if any is invalid, else 2 if any is not yet anchored, else 0.
    """
    client = RpcClient(timeout)
    reports: list[tuple[Path, VerificationReport]] = []
    for path in bundles:
        reports.append((path, _verify_one(path, pubkey, rpc or [], offline, client)))
    if len(reports) == 1:
        _finish(reports[0][1])
    worst = max((report for _, report in reports), key=lambda r: _SEVERITY[r.result])
    typer.echo(
        json.dumps(
            {
                "result": worst.result,
                "exit_code": worst.exit_code,
                "bundles": [{"file": str(p), **report.to_json()} for p, report in reports],
            },
            indent=2,
        )
    )
    raise typer.Exit(worst.exit_code)


#: How bad each outcome is when several bundles are verified at once.
_SEVERITY = {"valid": 0, "not_anchored": 1, "invalid": 2}


def _verify_one(
    path: Path, pubkey: str | None, rpc_urls: list[str], offline: bool, client: RpcClient
) -> VerificationReport:
    try:
        key = _pubkey(pubkey)
        parsed = parse_bundle(_read(path, "bundle"))
    except _InputError as error:
        return error.report
    except BundleError as error:
        return _input_failure("bundle", str(error))
    return verify_bundle(parsed, pubkey=key, rpc_urls=rpc_urls, offline=offline, rpc=client)


def consistency(
    old: Annotated[Path, typer.Argument(help="Older checkpoint file (or proof bundle).")],
    new: Annotated[Path, typer.Argument(help="Newer checkpoint file (or proof bundle).")],
    rpc: RpcOption = None,
    pubkey: PubkeyOption = None,
    proof: Annotated[
        Path | None,
        typer.Option("--proof", help="credagg-consistency/v1 file, if NEW does not embed one."),
    ] = None,
    offline: OfflineOption = False,
    timeout: TimeoutOption = 5.0,
) -> None:
    """Prove the log only grew between two signed checkpoints, and that both are anchored."""
    try:
        key = _pubkey(pubkey)
        old_file = parse_checkpoint_file(_read(old, "old"))
        new_file = parse_checkpoint_file(_read(new, "new"))
        given: ConsistencyProof | None = None
        if proof is not None:
            given = parse_consistency_proof(_read(proof, "proof"))
    except _InputError as error:
        _finish(error.report)
    except BundleError as error:
        _finish(_input_failure("checkpoint", str(error)))
    report = verify_consistency_checkpoints(
        old_file, new_file, given, key, rpc or [], offline=offline, timeout=timeout
    )
    _finish(report)


def register(app: typer.Typer) -> None:
    """Add `verify` and `consistency` as top-level commands of `app`."""
    app.command("verify")(verify)
    app.command("consistency")(consistency)


class _InputError(Exception):
    def __init__(self, report: VerificationReport) -> None:
        self.report = report
        super().__init__(report.checks[0].detail)


def _input_failure(name: str, detail: str) -> VerificationReport:
    return VerificationReport("invalid", [Check(name, "fail", detail)])


def _pubkey(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        return load_pubkey(value)
    except (PubkeyError, ValueError, OSError) as error:
        raise _InputError(_input_failure("pubkey", str(error))) from error


def _read(path: Path, name: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise _InputError(_input_failure(name, f"cannot read {path}: {error}")) from error
    return text


def _finish(report: VerificationReport) -> NoReturn:
    typer.echo(json.dumps(report.to_json(), indent=2))
    raise typer.Exit(report.exit_code)
