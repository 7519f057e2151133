"""What the demo prints: one line per step (green with what to look at, red with the error),
and the ranked quote table. The same facts go into a JSON summary for `--json`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table


class StepFailed(Exception):
    """A step of the demo did not do what it should; `detail` is what the user needs to see."""

    def __init__(self, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.detail = detail


class Steps:
    """Prints steps as they run and records them (name, ok, facts) for the JSON summary."""

    def __init__(self, console: Console, *, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.done: list[dict[str, Any]] = []

    @contextmanager
    def step(self, name: str) -> Iterator[dict[str, Any]]:
        """`with steps.step("sign in") as facts: facts["token"] = ...` - printed on exit."""
        facts: dict[str, Any] = {}
        began = time.monotonic()
        status = None if self.quiet else self.console.status(f"[bold]{name}[/] ...")
        if status is not None:
            status.start()
        try:
            yield facts
        except Exception as exc:  # every failure ends the demo red, never as a traceback
            self._stop(status)
            failed = (
                exc if isinstance(exc, StepFailed) else StepFailed(f"{type(exc).__name__}: {exc}")
            )
            self.done.append(
                {"step": name, "ok": False, "error": str(failed), "detail": failed.detail}
            )
            if not self.quiet:
                self.console.print(f"[bold red]x {name}[/]: {failed}")
                if failed.detail is not None:
                    self.console.print(failed.detail, style="red", highlight=False)
            if failed is exc:
                raise
            raise failed from exc
        self._stop(status)
        seconds = round(time.monotonic() - began, 1)
        self.done.append({"step": name, "ok": True, "seconds": seconds, **facts})
        if not self.quiet:
            shown = "\n    ".join(f"[dim]{k}[/] {v}" for k, v in facts.items() if not _bulky(v))
            self.console.print(
                f"[bold green]v {name}[/] [dim]({seconds}s)[/]\n    {shown}", soft_wrap=True
            )

    @staticmethod
    def _stop(status: Any) -> None:
        if status is not None:
            status.stop()

    def note(self, text: str) -> None:
        if not self.quiet:
            self.console.print(f"  {text}", highlight=False)


def _bulky(value: Any) -> bool:
    return isinstance(value, (dict, list)) and len(str(value)) > 120


def percent(value: Any) -> str:
    return f"{Decimal(str(value)) * 100:.3f} %" if value is not None else "-"


def units(value: Any, decimals: int) -> str:
    if value is None:
        return "-"
    return f"{Decimal(int(value)).scaleb(-decimals):,.2f}"


def quote_table(body: dict[str, Any], names: dict[int, str], decimals: int) -> Table:
    """Ranked quotes (best first), then quotes outside the borrower's limits."""
    table = Table(title=f"credit request {body['id']}", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("provider")
    table.add_column("chain", justify="right")
    table.add_column("effective rate", justify="right")
    table.add_column("APR (Reg Z)", justify="right")
    table.add_column("total cost (USDC)", justify="right")
    for quote in body["quotes"]:
        figures = quote["quote"]
        table.add_row(
            str(quote["rank"]),
            names.get(quote["provider_id"], str(quote["provider_id"])),
            str(quote["chain_id"]),
            percent(figures.get("effective_annual_rate")),
            percent(quote["figures"].get("regz_apr")),
            units(figures.get("total_cost"), decimals),
        )
    for row in body.get("excluded", []):
        table.add_row(
            "-",
            names.get(row["provider_id"], str(row["provider_id"])),
            str(row["chain_id"]),
            percent(row["quote"].get("effective_annual_rate")),
            percent(row["figures"].get("regz_apr")),
            f"excluded: {row.get('excluded_reason')}",
            style="yellow",
        )
    return table


def not_quoted_lines(body: dict[str, Any], names: dict[int, str]) -> list[str]:
    """Who was asked and did not quote (timed out, declined, failed, ineligible), and why."""
    return [
        f"[dim]{names.get(row['provider_id'], row['provider_id'])}: {row['outcome']}[/]"
        f" - {row.get('reason') or 'no reason given'}"
        for row in body["not_quoted"]
    ]
