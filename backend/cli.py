"""`credagg`: the one command line for every user (developer, operator, auditor).

Sub-commands are thin: they parse arguments, call a function that does the work, and render
the result with rich. Errors from the layers below are shown as one line, never a traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from backend.audit.cli import app as audit_app
from backend.auth.cli import register as register_auth_commands
from backend.credit.cli import register as register_credit_commands
from backend.demo.cli import demo as demo_command
from backend.kit.crypto_rotation import keys_app
from backend.receipts.cli import app as receipts_app
from backend.receipts.verify_cli import register as register_verify_commands
from backend.watcher.cli import app as watcher_app
from chain_adapters.exceptions import ChainError

app = typer.Typer(
    help="credagg: wallet-native credit aggregation with on-chain receipts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
contracts_app = typer.Typer(help="Compile and deploy the Solidity contracts.", no_args_is_help=True)
devnet_app = typer.Typer(help="Local Anvil devnets.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
register_verify_commands(app)  # `credagg verify`, `credagg consistency`: the auditor's tools
register_auth_commands(app)  # `credagg providers create`, `credagg auth ...`: operator keys
register_credit_commands(app)  # `credagg kyc set|show`: wallets' KYC tiers
app.add_typer(contracts_app, name="contracts")
app.add_typer(devnet_app, name="devnet")
app.add_typer(db_app, name="db")
app.add_typer(watcher_app, name="watcher")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
app.add_typer(receipts_app, name="receipts")
app.command("demo")(demo_command)  # the whole journey against a running `credagg dev`

console = Console()
err_console = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


@contracts_app.command("compile")
def contracts_compile(
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Ignore the artifact cache.")
    ] = False,
) -> None:
    """Compile contracts/ and hardhat_fixtures/; print each contract's bytecode size."""
    from chain_adapters.compiler import compile_timed

    try:
        project, seconds = compile_timed(use_cache=not no_cache)
    except ChainError as exc:
        raise _fail(str(exc)) from None
    table = Table(
        title=f"{len(project.ours())} contracts "
        f"({'cache hit' if project.cache_hit else 'compiled'} in {seconds:.2f}s)"
    )
    table.add_column("contract", overflow="fold")
    table.add_column("source", overflow="fold")
    table.add_column("runtime bytes", justify="right")
    table.add_column("EIP-170", justify="right")
    for artifact in sorted(project.ours(), key=lambda a: a.qualified_name):
        if not artifact.deployable:
            continue
        size = artifact.runtime_size
        table.add_row(artifact.name, artifact.source, f"{size:,}", f"{size / 24576:.0%}")
    console.print(table)
    console.print(f"solc: {project.solc}  input hash: {project.input_hash[:16]}")


@contracts_app.command("deploy")
def contracts_deploy(
    chain: Annotated[
        list[str] | None, typer.Option("--chain", help="Chain name (repeatable).")
    ] = None,
    all_chains: Annotated[
        bool, typer.Option("--all", help="Every chain in the chains file.")
    ] = False,
) -> None:
    """Deploy the suite with CREATE2 (same addresses everywhere) and grant roles via the timelock.

    Re-running is a no-op: contracts already deployed are verified, not sent again.
    """
    from backend.chains import chain_registry, deploy_to, deployments_dir
    from backend.config import get_settings
    from backend.db import create_db_engine
    from backend.migrate import upgrade_head

    if bool(chain) == all_chains:
        raise _fail("give --chain NAME (one or more) or --all", code=2)
    settings = get_settings()
    try:
        registry = chain_registry(settings)
        targets = list(registry) if all_chains else [registry.get(name) for name in chain or []]
        upgrade_head(settings)  # the nonce and transaction tables live in the database
        engine = create_db_engine(settings)
        try:
            for target in targets:
                result = deploy_to(settings, target, engine)
                table = Table(title=f"{target.name} (chain id {target.chain_id})")
                table.add_column("contract", overflow="fold")
                table.add_column("address", overflow="fold")
                table.add_column("this run", overflow="fold")
                for name, deployed in result.contracts.items():
                    table.add_row(
                        name,
                        deployed.address,
                        "deployed" if deployed.created else "present, code verified",
                    )
                console.print(table)
                console.print(
                    f"roles: {result.roles.state}"
                    + (
                        f" (operation {result.roles.operation_id})"
                        if result.roles.operation_id
                        else ""
                    )
                )
                for call in result.roles.calls if result.roles.state != "executed" else []:
                    console.print(f"  to propose: {call.contract}.{call.function}{call.args}")
        finally:
            engine.dispose()
    except ChainError as exc:
        raise _fail(str(exc)) from None
    console.print(f"manifests: {deployments_dir(settings) / 'deployments'}")


@devnet_app.command("up")
def devnet_up(
    chains_file: Annotated[Path, typer.Option(help="Where to write the chains config.")] = Path(
        ".credagg/chains.toml"
    ),
    block_time: Annotated[float, typer.Option(help="Seconds per block; 0 mines per tx.")] = 0.0,
) -> None:
    """Run two Anvil devnets (two chain ids) until Ctrl-C, and write their chains file."""
    from backend.devstack import start_local_chains

    try:
        devnets = start_local_chains(chains_file, block_time=block_time)
    except ChainError as exc:
        raise _fail(str(exc)) from None
    try:
        for devnet in devnets:
            console.print(f"[green]{devnet.name}[/] chain id {devnet.chain_id} at {devnet.rpc_url}")
        console.print(f"chains file: {chains_file}  (Ctrl-C to stop)")
        _wait_for_interrupt(lambda: all(d.is_running() for d in devnets))
    finally:
        for devnet in devnets:
            devnet.stop()
        console.print("devnets stopped")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every Alembic migration to the configured database."""
    from backend.config import get_settings
    from backend.migrate import upgrade_head

    settings = get_settings()
    revision = upgrade_head(settings)
    console.print(f"database at revision {revision}: {settings.safe_summary().get('database')}")


@app.command("dev")
def dev(
    port: Annotated[int, typer.Option(help="API port.")] = 8000,
    block_time: Annotated[
        float, typer.Option(help="Devnet seconds per block; 0 mines per tx.")
    ] = 1.0,
) -> None:
    """Run the whole system locally: devnets, contracts, migrations, API, worker with beat."""
    from backend.devstack import ServiceDied, run_dev_stack

    try:
        run_dev_stack(api_port=port, block_time=block_time, console=console)
    except KeyboardInterrupt:
        # Every child is stopped. Exit now, with 130, without the interpreter's shutdown: that
        # would join deploy threads abandoned mid-call to devnets that are gone, and a Ctrl-C
        # meanwhile (or while they unwind) ends the process by SIGINT instead of 130.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        err_console.print("interrupted during start-up; everything started was stopped")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    except (ChainError, ServiceDied) as exc:
        raise _fail(str(exc)) from None


def _wait_for_interrupt(healthy: object) -> None:
    """Block until SIGINT/SIGTERM, or until `healthy()` turns false."""
    stop = {"now": False}

    def handler(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while not stop["now"]:
        if callable(healthy) and not healthy():
            raise _fail("a devnet exited unexpectedly")
        time.sleep(0.2)


if __name__ == "__main__":
    app()
