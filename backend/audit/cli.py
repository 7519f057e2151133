"""`credagg audit verify`: check the audit log against its hashes and its receipted heads.

Exit 0 when the log is intact, 1 when any check fails (each problem names its seq and why), 2
when the check could not run at all (database unreachable or not migrated). With `--json` the
report is one JSON object on stdout; otherwise a summary and the problems, one per line.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from backend.audit.chain import hex_hash
from backend.audit.service import DEFAULT_PAGE_SIZE, VerificationReport, verify_log

app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)

console = Console(soft_wrap=True)  # one problem per line, whatever the terminal width
err_console = Console(stderr=True, soft_wrap=True)


@app.command("verify")
def verify(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON report on stdout.")] = False,
    page_size: Annotated[
        int, typer.Option("--page-size", min=1, max=100_000, help="Entries read per query.")
    ] = DEFAULT_PAGE_SIZE,
) -> None:
    """Recompute every entry's hash and link and check them against the receipted heads."""
    from backend.config import get_settings
    from backend.db import create_db_engine, create_session_factory

    settings = get_settings()
    engine = create_db_engine(settings)
    try:
        report = verify_log(create_session_factory(engine), page_size=page_size)
    except SQLAlchemyError as exc:
        message = str(exc).splitlines()[0]
        err_console.print(
            f"[bold red]error:[/] cannot read the audit log: {escape(message)} "
            "(is DATABASE_URL right, and did `credagg db upgrade` run?)"
        )
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        _render(report)
    raise typer.Exit(0 if report.ok else 1)


def _render(report: VerificationReport) -> None:
    checkpoint = (
        f"last receipted at seq {report.last_checkpoint_seq}"
        if report.last_checkpoint_seq is not None
        else "none receipted yet"
    )
    console.print(
        f"{report.entries} entries, head seq {report.head.seq} "
        f"{hex_hash(report.head.entry_hash)}; {report.checkpoints} checkpoint(s), {checkpoint}"
    )
    if report.ok:
        console.print("[green]audit log intact[/]")
        return
    for problem in report.problems:
        console.print(f"[red]seq {problem.seq}[/] {problem.check}: {escape(problem.detail)}")
    hidden = report.problems_total - len(report.problems)
    if hidden:
        console.print(f"... and {hidden} more problem(s)")
    console.print(f"[bold red]audit log BROKEN[/]: {report.problems_total} problem(s)")
