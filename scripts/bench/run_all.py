#!/usr/bin/env python3
"""Every benchmark under scripts/bench/, one after another, and one table of their headlines.

    .venv/bin/python scripts/bench/run_all.py            # full sizes (many minutes)
    .venv/bin/python scripts/bench/run_all.py --quick    # small sizes: a smoke run
    CREDAGG_BENCH_QUICK=1 .venv/bin/python scripts/bench/run_all.py   # the same as --quick

Each benchmark runs as its own subprocess with this process's environment (so `DATABASE_URL`
selects PostgreSQL for all of them) and prints its own markdown tables; this script reads those
tables back, picks each headline figure (ours, the baseline it is compared with, the ratio, the
target and whether it is met) and prints them as one table, followed by each benchmark's own
output. It reads the tables the benchmarks already print rather than a second, machine-only
format, so the figures in the summary are the very ones a reader sees below it.

`--quick` figures are smoke figures, not measurements: small sizes finish fast but say little
about throughput. A benchmark that fails, or whose table lacks a row the summary needs, shows as
a `failed`/`missing` row and makes the exit status 1.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parents[1]
QUICK_ENV = "CREDAGG_BENCH_QUICK"


# -- the markdown tables a benchmark prints ------------------------------------------------


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]

    def column(self, *needles: str) -> int | None:
        """Index of the first column whose header contains every needle (case-insensitive)."""
        for index, name in enumerate(self.header):
            if all(needle.lower() in name.lower() for needle in needles):
                return index
        return None

    def row(self, pattern: str) -> list[str] | None:
        """The first row whose first cell matches `pattern` (a regex, searched)."""
        for cells in self.rows:
            if cells and re.search(pattern, cells[0], re.IGNORECASE):
                return cells
        return None


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def parse_tables(text: str) -> list[Table]:
    """Every markdown table in `text`: a `| a | b |` header, a `|---|` rule, then rows."""
    tables: list[Table] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines) - 1:
        line, rule = lines[index].strip(), lines[index + 1].strip()
        if line.startswith("|") and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", rule):
            header, rows = _cells(line), []
            index += 2
            while index < len(lines) and lines[index].strip().startswith("|"):
                rows.append(_cells(lines[index]))
                index += 1
            tables.append(Table(header, rows))
        else:
            index += 1
    return tables


def number(cell: str) -> float:
    """The first number in a cell: `6,382 (8,037 in a quieter run)` -> 6382.0."""
    match = re.search(r"-?\d[\d,]*(?:\.\d+)?", cell)
    if match is None:
        raise ValueError(f"no number in {cell!r}")
    return float(match.group().replace(",", ""))


# -- headline rows -------------------------------------------------------------------------


@dataclass(frozen=True)
class Headline:
    bench: str
    measure: str
    ours: str
    baseline: str
    ratio: str
    target: str
    met: str  # "yes", "no", or "-" when the figure has no target

    def cells(self) -> list[str]:
        return [self.bench, self.measure, self.ours, self.baseline, self.ratio, self.target,
                self.met]  # fmt: skip


def _met(ok: bool) -> str:
    return "yes" if ok else "no"


def _find(tables: list[Table], pattern: str, *header: str) -> tuple[Table, list[str]]:
    """The table with a column matching `header` and its first row matching `pattern`."""
    for table in tables:
        if header and table.column(*header) is None:
            continue
        cells = table.row(pattern)
        if cells is not None:
            return table, cells
    raise LookupError(f"no row {pattern!r} in a table with a {' '.join(header)!r} column")


def compile_headlines(tables: list[Table]) -> list[Headline]:
    table, cold = _find(tables, r"^cold", "seconds")
    _, cached = _find(tables, r"^cached", "seconds")
    col = table.column("seconds")
    assert col is not None
    cold_s, cached_s = number(cold[col]), number(cached[col])
    return [
        Headline("compile", "whole tree, cache hit vs cold compile", f"{cached_s:.4f} s",
                 f"{cold_s:.3f} s", f"{cold_s / cached_s:,.0f}x faster", "-", "-"),
    ]  # fmt: skip


ANCHOR_BUDGET = 80_000


def gas_headlines(tables: list[Table]) -> list[Headline]:
    table, steady = _find(tables, r"anchor \(steady state\)", "gas")
    col = table.column("gas")
    assert col is not None
    gas = number(steady[col])
    ratio = gas / ANCHOR_BUDGET
    return [
        Headline("gas", "ReceiptAnchor.anchor(), steady state", f"{gas:,.0f} gas",
                 f"{ANCHOR_BUDGET:,} gas budget", f"{ratio:.3f}x", "<= 1.00x",
                 _met(ratio <= 1.0)),
    ]  # fmt: skip


def receipts_headlines(tables: list[Table]) -> list[Headline]:
    table, one = _find(tables, r"issued/s, batch 1\b", "figure")
    col = table.column("figure")
    assert col is not None
    _, thousand = _find(tables, r"issued/s, batch 1000\b", "figure")
    _, verified = _find(tables, r"proofs verified/s", "figure")
    _, gas_one = _find(tables, r"gas per receipt, one anchor tx", "figure")
    _, gas_1024 = _find(tables, r"gas per receipt anchored, batch 1024", "figure")
    issued_1, issued_1000 = number(one[col]), number(thousand[col])
    proofs = number(verified[col])
    per_tx, per_1024 = number(gas_one[col]), number(gas_1024[col])
    less = per_tx / per_1024
    return [
        Headline("receipts", "receipts issued/s durably, 1000 per transaction",
                 f"{issued_1000:,.0f}/s", f"{issued_1:,.0f}/s (1 per transaction)",
                 f"{issued_1000 / issued_1:,.1f}x", ">= 3,000/s", _met(issued_1000 >= 3_000)),
        Headline("receipts", "inclusion proofs verified/s, offline", f"{proofs:,.0f}/s", "-",
                 "-", ">= 20,000/s", _met(proofs >= 20_000)),
        Headline("receipts", "gas per receipt, anchor batch 1024", f"{per_1024:,.1f}",
                 f"{per_tx:,.1f} (one anchor per receipt)", f"{less:,.0f}x less",
                 "<= 100 gas and >= 500x less", _met(per_1024 <= 100 and less >= 500)),
    ]  # fmt: skip


def watcher_headlines(tables: list[Table]) -> list[Headline]:
    table, ours = _find(tables, r"^watcher backfill", "logs/s")
    _, naive = _find(tables, r"^naive", "logs/s")
    col = table.column("logs/s")
    assert col is not None
    ours_rate, naive_rate = number(ours[col]), number(naive[col])
    ratio = ours_rate / naive_rate
    lag_table, lag = _find(tables, r"^watcher", "max")
    lag_col, target_col = lag_table.column("max"), lag_table.column("target")
    assert lag_col is not None and target_col is not None
    max_lag, target = number(lag[lag_col]), number(lag[target_col])
    return [
        Headline("watcher", "backfill into PostgreSQL, logs/s", f"{ours_rate:,.0f}/s",
                 f"{naive_rate:,.0f}/s (naive web3.py loop)", f"{ratio:.1f}x",
                 ">= 10x and >= 10,000/s", _met(ratio >= 10 and ours_rate >= 10_000)),
        Headline("watcher", "steady-state lag (head - cursor), max", f"{max_lag:.0f} blocks",
                 "-", "-", f"<= {target:.0f} (confirmations + 1)", _met(max_lag <= target)),
    ]  # fmt: skip


def fanout_headlines(tables: list[Table], deadline_ms: float) -> list[Headline]:
    table = next(t for t in tables if t.column("clients") is not None)
    col = {name: table.column(name) for name in ("clients", "errors", "p50 ms", "p99 ms")}
    ratio_col = table.column("p50", "ratio")
    if None in col.values() or ratio_col is None:
        raise LookupError(f"fan-out table lacks a column: {table.header}")
    levels = [cells for cells in table.rows if re.fullmatch(r"\d+", cells[0])]
    _, sequential = _find(tables, r"sequential", "clients")
    if not levels:
        raise LookupError("fan-out table has no client levels")
    lowest = min(levels, key=lambda cells: int(cells[0]))
    p50, ratio = number(lowest[col["p50 ms"]]), number(lowest[ratio_col])  # type: ignore[index]
    seq_p50 = number(sequential[col["p50 ms"]])  # type: ignore[index]
    rows = [
        Headline("fanout", f"p50 request / slowest answering lender, {lowest[0]} clients",
                 f"{p50:,.0f} ms ({ratio:.2f}x)", f"{seq_p50:,.0f} ms (sequential, same lenders)",
                 f"{seq_p50 / p50:.1f}x faster", "<= 1.10x the slowest lender",
                 _met(ratio <= 1.10)),
    ]  # fmt: skip
    for cells in levels:
        p99 = number(cells[col["p99 ms"]])  # type: ignore[index]
        errors = int(number(cells[col["errors"]]))  # type: ignore[index]
        rows.append(
            Headline("fanout", f"p99 request and errors, {cells[0]} clients",
                     f"{p99:,.0f} ms, {errors} errors", f"{deadline_ms:,.0f} ms deadline",
                     f"{p99 / deadline_ms:.2f}x", "<= deadline + 20 ms, 0 errors",
                     _met(p99 <= deadline_ms + 20 and errors == 0)),
        )  # fmt: skip
    return rows


def pricing_headlines(tables: list[Table]) -> list[Headline]:
    table, median = _find(tables, r"^median round", "old/new")
    old_col, new_col, ratio_col = (table.column(n) for n in ("old", "new", "old/new"))
    assert old_col is not None and new_col is not None and ratio_col is not None
    old, new = number(median[old_col]), number(median[new_col])
    return [
        Headline("pricing", "normalise(), us per quote (median round)", f"{new:,.0f} us",
                 f"{old:,.0f} us (the code before, frozen)", f"{old / new:.2f}x", "-", "-"),
    ]  # fmt: skip


def lender_http_headlines(tables: list[Table]) -> list[Headline]:
    table, ours = _find(tables, r"^LenderClient", "CPU ms / call")
    _, before = _find(tables, r"^httpx", "CPU ms / call")
    col = table.column("CPU ms / call")
    assert col is not None
    mine, theirs = number(ours[col]), number(before[col])
    return [
        Headline("lender HTTP", "client CPU per lender call", f"{mine:.3f} ms",
                 f"{theirs:.3f} ms (httpx over aiohttp, before)", f"{theirs / mine:.1f}x less",
                 "-", "-"),
    ]  # fmt: skip


# -- the benchmarks ------------------------------------------------------------------------


@dataclass
class Bench:
    name: str
    script: str
    full: list[str]
    quick: list[str]
    headlines: Callable[[list[Table]], list[Headline]]
    output: str = ""
    seconds: float = 0.0
    returncode: int = 0
    rows: list[Headline] = field(default_factory=list)


FANOUT_DEADLINE_S = 5.0
FULL_LEVELS, QUICK_LEVELS = "10,50,200", "10,20"


def benches() -> list[Bench]:
    deadline_ms = FANOUT_DEADLINE_S * 1000
    return [
        Bench("compile", "compile.py", [], ["--repeat", "1"], compile_headlines),
        Bench("gas", "gas.py", [], [], gas_headlines),
        Bench("receipts", "receipts.py", [], ["--receipts", "1000", "--proofs", "200"],
              receipts_headlines),
        Bench("watcher", "watcher.py", [],
              ["--blocks", "100", "--per-block", "10", "--steady-seconds", "4"],
              watcher_headlines),
        Bench("pricing", "pricing.py", [], ["--quotes", "200", "--rounds", "2"],
              pricing_headlines),
        Bench("lender HTTP", "lender_http.py", [], ["--calls", "300", "--rounds", "1"],
              lender_http_headlines),
        Bench("fanout", "fanout.py",
              ["--deadline", str(FANOUT_DEADLINE_S), "--levels", FULL_LEVELS],
              ["--deadline", str(FANOUT_DEADLINE_S), "--levels", QUICK_LEVELS,
               "--requests", "10,20", "--wallets", "4", "--baseline-rounds", "1"],
              lambda tables: fanout_headlines(tables, deadline_ms)),
    ]  # fmt: skip


def run(bench: Bench, *, quick: bool) -> None:
    """Run one benchmark as a subprocess; keep its stdout; its stderr goes to ours (progress)."""
    argv = [sys.executable, str(BENCH_DIR / bench.script), *(bench.quick if quick else bench.full)]
    print(f"run_all: {' '.join(argv[1:])}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    bench.seconds = time.perf_counter() - started
    bench.output, bench.returncode = done.stdout, done.returncode
    if done.returncode != 0:
        bench.rows = [_broken(bench, f"failed (exit {done.returncode})")]
        return
    try:
        bench.rows = bench.headlines(parse_tables(done.stdout))
    except (LookupError, ValueError, StopIteration, AssertionError, ZeroDivisionError) as exc:
        bench.rows = [_broken(bench, f"missing ({exc})")]


def _broken(bench: Bench, why: str) -> Headline:
    return Headline(bench.name, why, "-", "-", "-", "-", "no")


def markdown(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


HEADER = ("benchmark", "measure", "ours", "baseline", "ratio", "target", "met")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get(QUICK_ENV, "") not in ("", "0"),
        help=f"small sizes for a smoke run (also: {QUICK_ENV}=1)",
    )
    parser.add_argument("--only", default="", help="comma-separated benchmark names (default: all)")
    args = parser.parse_args(argv)
    selected = benches()
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {bench.name for bench in selected}
        if unknown:
            parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from "
                         f"{[bench.name for bench in selected]}")  # fmt: skip
        selected = [bench for bench in selected if bench.name in wanted]
    for bench in selected:
        run(bench, quick=args.quick)

    mode = "quick smoke run (small sizes: figures are not measurements)" if args.quick else "full"
    database = (
        "PostgreSQL"
        if os.environ.get("DATABASE_URL", "").startswith("postgres")
        else ("SQLite where a benchmark allows it")
    )
    print(f"# credagg benchmarks ({mode}; {os.cpu_count()} CPUs; {database})\n")
    print(markdown(HEADER, (row.cells() for bench in selected for row in bench.rows)))
    for bench in selected:
        print(f"\n## {bench.name} (`scripts/bench/{bench.script}`, {bench.seconds:.0f} s)\n")
        print(bench.output.strip() or "(no output)")
    failed = [b.name for b in selected if b.returncode != 0 or any(r.ours == "-" for r in b.rows)]
    if failed:
        print(f"\nrun_all: failed or incomplete: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
