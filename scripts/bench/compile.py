"""Cold compile vs cache hit of the whole contract tree, measured in one run.

    .venv/bin/python scripts/bench/compile.py [--repeat 3]

Prints a markdown table: median seconds for a cold compile (cache disabled) and for a cached
one, and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from chain_adapters.compiler import compile_project, resolve_solc


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    solc = resolve_solc()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        cold, warm = [], []
        project = compile_project(cache_dir=cache)  # fills the cache
        for _ in range(args.repeat):
            started = time.perf_counter()
            compile_project(cache_dir=cache, use_cache=False)
            cold.append(time.perf_counter() - started)
            started = time.perf_counter()
            hit = compile_project(cache_dir=cache)
            warm.append(time.perf_counter() - started)
            assert hit.cache_hit
    cold_s, warm_s = statistics.median(cold), statistics.median(warm)
    print(f"solc: {solc.how} ({solc.path}); {len(project.ours())} contracts, "
          f"{len(project.artifacts)} with OpenZeppelin; median of {args.repeat}")
    print("| compile | seconds | ratio |")
    print("|---|---|---|")
    print(f"| cold (no cache) | {cold_s:.3f} | 1x |")
    print(f"| cached | {warm_s:.4f} | {cold_s / warm_s:,.0f}x faster |")


if __name__ == "__main__":
    main()
