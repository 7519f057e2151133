"""`credagg demo`: run the journey against a running `credagg dev` and print every step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from backend.demo.output import StepFailed, Steps

if TYPE_CHECKING:
    from backend.demo.context import DemoContext

LAST_RUN_FILE = "last-run.json"


def demo(
    api: Annotated[
        str | None,
        typer.Option("--api", help="The API's base URL (default: the dev stack's)."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="The dev stack's data directory [default: CREDAGG_DATA_DIR, else ./.credagg].",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Also print a JSON summary on stdout (steps go to stderr)."),
    ] = False,
) -> None:
    """Walk one new wallet through credit, collateral, an alert, repayment and an audit.

    Needs `scripts/dev` (or `credagg dev`) running on the same data directory. It deploys the
    two_chain_market scenario if it is not there yet (and reuses it otherwise), registers two
    DeFi pools and two lenders (scripts/example_lender.py, one process each), then prints each
    step green with what to look at; the first failure prints red and exits 1.
    """
    # web3 and the database layer load here, not when any other `credagg` command starts
    from backend.config import get_settings
    from backend.demo.context import load_context
    from backend.demo.journey import Journey

    console = Console(stderr=as_json)
    steps = Steps(console)
    summary: dict[str, object] = {"ok": False}
    code = 0
    context: DemoContext | None = None
    try:
        context = load_context(data_dir or get_settings().data_dir, api)
        journey = Journey(context, steps)
        try:
            summary = journey.run()
        finally:
            summary["steps"] = steps.done
    except StepFailed as exc:
        if not steps.done or steps.done[-1].get("ok", True):  # failed before any step began
            console.print(f"[bold red]x[/] {exc}")
            if exc.detail is not None:
                console.print(exc.detail, style="red", highlight=False)
        summary.update(ok=False, error=str(exc), steps=steps.done)
        code = 1
    else:
        console.print("[bold green]demo complete:[/] every step passed")
    document = json.dumps(summary, indent=2, default=str)
    if context is not None:  # what the last run did, for a test or a curious developer
        (context.state_dir / LAST_RUN_FILE).write_text(document, encoding="utf-8")
    if as_json:
        print(document)
    raise typer.Exit(code)
