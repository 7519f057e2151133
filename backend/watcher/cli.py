"""`credagg watcher backfill|rebuild`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from backend.watcher.ingest import StepResult

app = typer.Typer(help="Chain watcher: backfill and rebuild.", no_args_is_help=True)
console = Console()


@app.command("backfill")
def backfill_command(
    chain: Annotated[str, typer.Option("--chain", help="Chain name from the chains file.")],
    from_block: Annotated[int, typer.Option("--from", help="First block to ingest.", min=0)],
) -> None:
    """Ingest a chain's suite logs from BLOCK to the finalized block, then live takes over."""
    from backend.config import get_settings
    from backend.db import create_db_engine, create_session_factory
    from backend.watcher.backfill import backfill
    from backend.watcher.targets import watchers

    settings = get_settings()
    found = [w for w in watchers(settings) if w.adapter.chain.name == chain]
    if not found:
        console.print(f"[red]error:[/] no watched chain {chain!r} (is the suite deployed there?)")
        raise typer.Exit(1)
    engine = create_db_engine(settings)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}"),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"{chain} blocks", total=None)

        def report(result: StepResult) -> None:
            progress.update(
                task,
                total=max(result.finalized - from_block, 1),
                completed=max(result.cursor - from_block, 0),
            )

        results = backfill(
            create_session_factory(engine), found[0], from_block=from_block, progress=report
        )
    engine.dispose()
    console.print(f"{sum(r.logs for r in results)} logs; cursor at {results[-1].cursor}")


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
    chain_id = chain_registry(settings).get(chain).chain_id
    engine = create_db_engine(settings)
    with session_scope(create_session_factory(engine)) as session:
        replayed = rebuild(session, chain_id, default_registry())
    engine.dispose()
    console.print(f"rebuilt {chain}: {replayed} logs replayed")
