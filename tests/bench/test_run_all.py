"""`scripts/bench/run_all.py` runs every benchmark and prints one headline table.

The run is the README's `run: bench` block, as written, with `CREDAGG_BENCH_QUICK=1` (small
sizes; a full run takes many minutes). It checks the table's shape (every benchmark, every
headline row, each with a figure, a baseline or a target), never the figures: timings on a shared
2-core machine say nothing in a test.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from tests.test_readme import ROOT, blocks_of

RUN_ALL = ROOT / "scripts" / "bench" / "run_all.py"


def load_run_all() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_all", RUN_ALL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_all"] = module
    spec.loader.exec_module(module)
    return module


def test_parse_tables_reads_every_markdown_table() -> None:
    run_all = load_run_all()
    text = "intro\n| a | b |\n|---|---:|\n| x | 1,234.5 |\n| y | 2 |\n\nnot a table\n| c |\n|---|\n"
    tables = run_all.parse_tables(text)
    assert [t.header for t in tables] == [["a", "b"], ["c"]]
    assert tables[0].row(r"^x")[1] == "1,234.5" and tables[1].rows == []
    assert run_all.number("6,382 (8,037 in a quieter run)") == 6382.0


def test_missing_row_is_reported_not_hidden() -> None:
    run_all = load_run_all()
    bench = run_all.Bench("gas", "gas.py", [], [], run_all.gas_headlines)
    tables = run_all.parse_tables("| function | gas | note |\n|---|---|---|\n| other | 1 | |\n")
    try:
        bench.headlines(tables)
    except LookupError as exc:
        assert "steady state" in str(exc)
    else:
        raise AssertionError("a table without the anchor row must not yield a headline")


def test_readme_bench_block_prints_every_headline_row(tmp_path: Path) -> None:
    (block,) = blocks_of("bench")
    env = {**os.environ, "CREDAGG_BENCH_QUICK": "1", "CREDAGG_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run_all = load_run_all()
    (summary, *own) = run_all.parse_tables(done.stdout)
    assert summary.header == list(run_all.HEADER)
    measures = [(cells[0], cells[1]) for cells in summary.rows]
    levels = run_all.QUICK_LEVELS.split(",")
    expected = [
        ("compile", "whole tree, cache hit vs cold compile"),
        ("gas", "ReceiptAnchor.anchor(), steady state"),
        ("receipts", "receipts issued/s durably, 1000 per transaction"),
        ("receipts", "inclusion proofs verified/s, offline"),
        ("receipts", "gas per receipt, anchor batch 1024"),
        ("watcher", "backfill into PostgreSQL, logs/s"),
        ("watcher", "steady-state lag (head - cursor), max"),
        ("pricing", "normalise(), us per quote (median round)"),
        ("lender HTTP", "client CPU per lender call"),
        ("fanout", f"p50 request / slowest answering lender, {levels[0]} clients"),
        *[("fanout", f"p99 request and errors, {level} clients") for level in levels],
    ]
    assert measures == expected
    for cells in summary.rows:
        assert len(cells) == len(run_all.HEADER)
        assert cells[2] != "-", cells  # a figure was measured
        assert cells[6] in ("yes", "no", "-"), cells
        assert cells[3] != "-" or cells[5] != "-", f"neither baseline nor target: {cells}"
    # each benchmark's own tables follow the summary
    for name in ("compile", "gas", "receipts", "watcher", "pricing", "lender HTTP", "fanout"):
        assert f"## {name} (`scripts/bench/" in done.stdout
    assert len(own) >= 6
