"""`credagg watcher backfill|rebuild`: thin commands over backfill.py and rebuild.py."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from backend.db import SessionFactory
from backend.exceptions import CredaggError
from backend.watcher.exceptions import WatcherError
from backend.watcher.ingest import ChainWatcher, StepResult
from chain_adapters.exceptions import ChainError

app = typer.Typer(help="Chain watcher: backfill and rebuild.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(1)


@app.command("backfill")
def backfill_command(
    chain: Annotated[str, typer.Option("--chain", help="Chain name from the chains file.")],
    from_block: Annotated[int, typer.Option("--from", help="First block to ingest.", min=0)],
) -> None:
    """Ingest CHAIN's suite logs from BLOCK to its finalized block; live ingestion continues.

    Resumable: a cursor already past BLOCK is continued, never rewound.
    """
    from backend.config import get_settings
    from backend.db import create_db_engine, create_session_factory
    from backend.watcher.targets import watchers

    settings = get_settings()
    try:
        found = [w for w in watchers(settings) if w.adapter.chain.name == chain]
        if not found:
            raise _fail(
                f"chain {chain!r} has no deployed suite in {settings.data_dir}/deployments; "
                "run `credagg contracts deploy --chain NAME` first"
            )
        engine = create_db_engine(settings)
        try:
            results = _run_backfill(create_session_factory(engine), found[0], chain, from_block)
        finally:
            engine.dispose()
    except (ChainError, WatcherError, CredaggError) as exc:
        raise _fail(str(exc)) from None
    console.print(f"{sum(r.logs for r in results)} logs stored; cursor at {results[-1].cursor}")


def _run_backfill(
    factory: SessionFactory, watcher: ChainWatcher, chain: str, from_block: int
) -> list[StepResult]:
    from backend.watcher.backfill import backfill

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(f"{chain} blocks", total=None)

        def report(result: StepResult) -> None:
            progress.update(
                task,
                total=max(result.finalized - from_block + 1, 1),
                completed=max(result.cursor - from_block + 1, 0),
            )

        return backfill(factory, watcher, from_block=from_block, progress=report)


@app.command("rebuild")
def rebuild_command(
    chain: Annotated[str, typer.Option("--chain", help="Chain name from the chains file.")],
) -> None:
    """Recompute every projection of CHAIN from the stored raw logs."""
    from backend.chains import chain_registry
    from backend.config import get_settings
    from backend.db import create_db_engine, create_session_factory, session_scope
    from backend.watcher.projections import default_registry
    from backend.watcher.rebuild import rebuild

    settings = get_settings()
    try:
        chain_id = chain_registry(settings).get(chain).chain_id
        engine = create_db_engine(settings)
        try:
            with session_scope(create_session_factory(engine)) as session:
                replayed = rebuild(
                    session, chain_id, default_registry(settings.risk_alert_thresholds)
                )
        finally:
            engine.dispose()
    except (ChainError, CredaggError) as exc:
        hint = getattr(exc, "hint", None)
        raise _fail(f"{exc} ({hint})" if hint else str(exc)) from None
    console.print(f"rebuilt {chain}: {replayed} logs replayed")
