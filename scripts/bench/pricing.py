"""Quote normalisation benchmark: the frozen pre-optimisation code against today's, in one run.

    .venv/bin/python scripts/bench/pricing.py [--quotes 2000] [--rounds 5] [--seed 7]

Builds `--quotes` quotes the way `service.finish_credit_request` calls `normalise`: requests of
19 quotes that share amount, term, start date, assets, feed prices, gas, expiry, borrower,
aggregator and nonce, and differ in nominal APR (lenders' four-decimal rates and DeFi ray rates
with 27 decimals), origination fee and collateral. Then normalises every quote with the frozen
reference copy (tests/credit/_pricing_reference, the code before the speed work) and with
`backend.credit.normalise`, alternating the two per round so both see the same machine load, and
prints per-quote microseconds (best round and median round) and old/new ratios as one markdown
table, plus how many quotes' outputs differ (expected 0; printed, not asserted).

The first round of the new code fills its caches (probe powers, logarithms of a 0.001 grid,
calendar arithmetic); a server
keeps them warm across requests, so the best and median rounds are the steady state. `--cold`
clears those caches before every new-code round instead.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backend.credit import normalise as new
from backend.credit.assets import AssetEntry
from backend.credit.pricing.dates import add_months, months_and_days
from backend.credit.pricing.eu_aprc import _probe_power
from backend.credit.pricing.powers import _ln_anchor
from backend.credit.sources import RawQuote
from tests.credit._pricing_reference import normalise as old

QUOTES_PER_REQUEST = 19
TERMS_DAYS = (30, 60, 90, 180, 270, 360, 540, 720, 1080, 1800, 3600)
USDC = AssetEntry(symbol="USDC", chain_id=1, address="0x" + "a0" * 20, decimals=6)
WETH = AssetEntry(
    symbol="WETH",
    chain_id=1,
    address="0x" + "c0" * 20,
    decimals=18,
    liquidation_threshold=Decimal("0.825"),
)


def build_quotes(count: int, seed: int) -> list[tuple[RawQuote, dict[str, Any]]]:
    """(raw quote, normalise keyword arguments) for `count` quotes, 19 per request."""
    rng = random.Random(seed)
    quotes: list[tuple[RawQuote, dict[str, Any]]] = []
    request = 0
    while len(quotes) < count:
        request += 1
        amount = rng.choice([10**8, 2_500 * 10**6, 123_456_789, 5 * 10**12, 10**15])
        shared: dict[str, Any] = {
            "amount": amount,
            "term_days": rng.choice(TERMS_DAYS),
            "debt": USDC,
            "prices": new.Prices(Decimal("1.0001"), Decimal("3012.55"), Decimal("3012.55")),
            "gas_wei": rng.randint(10**14, 10**16),
            "start": date(2026, 1, 1) + timedelta(days=rng.randint(0, 730)),
            "expires_at": datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
            "borrower": "0x" + "22" * 20,
            "aggregator": rng.choice(["0x" + "33" * 20, None]),
            "nonce": rng.randint(0, 10**6),
        }
        collateral = new.Collateral(WETH, rng.randint(10**17, 10**20)) if request % 2 else None
        for index in range(QUOTES_PER_REQUEST):
            defi = index % 3 == 0
            if defi:
                apr = Decimal(rng.randint(10**24, 3 * 10**26)).scaleb(-27)
                fee = 0
            else:
                apr = Decimal(rng.randint(0, 3_600)).scaleb(-4)
                fee = rng.choice([0, amount // 100, amount // 250, rng.randint(0, amount // 20)])
            raw = RawQuote(apr, fee, "0x" + f"{index:02x}" * 20, None)
            quotes.append(
                (
                    raw,
                    {
                        **shared,
                        "quote_id": f"r{request}-q{index}",
                        "provider_id": index,
                        "source": "defi" if defi else "traditional",
                        "collateral": collateral,
                    },
                )
            )
    return quotes[:count]


def run(fn: Callable[..., Any], quotes: list[tuple[RawQuote, dict[str, Any]]]) -> float:
    """Seconds to normalise every quote once."""
    started = time.perf_counter()
    for raw, kwargs in quotes:
        fn(raw, **kwargs)
    return time.perf_counter() - started


def clear_caches() -> None:
    """Empty the new code's caches, to price as a freshly started process would."""
    for cached in (_probe_power, _ln_anchor, months_and_days, add_months):
        cached.cache_clear()


def differences(quotes: list[tuple[RawQuote, dict[str, Any]]]) -> int:
    """Quotes whose document, figures, ranking or typed data differ between old and new."""
    differ = 0
    for raw, kwargs in quotes:
        a, b = old.normalise(raw, **kwargs), new.normalise(raw, **kwargs)
        same = (
            a.document == b.document
            and a.figures == b.figures
            and a.typed_data == b.typed_data
            and repr(a.ranking) == repr(b.ranking)
        )
        differ += not same
    return differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--cold", action="store_true", help="clear the new code's caches each round"
    )
    args = parser.parse_args()
    quotes = build_quotes(args.quotes, args.seed)
    old_times: list[float] = []
    new_times: list[float] = []
    for _ in range(args.rounds):
        old_times.append(run(old.normalise, quotes))
        if args.cold:
            clear_caches()
        new_times.append(run(new.normalise, quotes))
    per = 1e6 / len(quotes)
    old_best, new_best = min(old_times) * per, min(new_times) * per
    old_median, new_median = statistics.median(old_times) * per, statistics.median(new_times) * per
    print(f"## normalise(), {len(quotes)} quotes x {args.rounds} rounds" + (" (cold)" * args.cold))
    print()
    print("| measure | old us/quote | new us/quote | old/new |")
    print("|---|---:|---:|---:|")
    print(f"| best round | {old_best:.1f} | {new_best:.1f} | {old_best / new_best:.2f}x |")
    print(
        f"| median round | {old_median:.1f} | {new_median:.1f} | {old_median / new_median:.2f}x |"
    )
    print()
    print(f"quotes whose outputs differ (expected 0): {differences(quotes)}")


if __name__ == "__main__":
    main()
