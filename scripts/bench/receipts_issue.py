"""Receipts issued per second, durably (hash + sign + append + COMMIT), at batch sizes 1, 100, 1000.

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test .venv/bin/python \
        scripts/bench/receipts_issue.py [--receipts 5000]

Creates a throwaway database next to DATABASE_URL's (or a temporary SQLite file when
DATABASE_URL is unset), migrates it, and for each batch size issues receipts through
`issue_receipts` in transactions of that many receipts, each committed (with the server's
default `synchronous_commit`, i.e. fsync'd on PostgreSQL). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backend.config import Settings
from backend.db import create_db_engine, create_session_factory, migrate, session_scope
from backend.receipts.models import ReceiptKind
from backend.receipts.service import ReceiptDraft, issue_receipts, signer_from_settings
from tests.backend.conftest import fresh_postgres_database, is_postgres

BATCH_SIZES = (1, 100, 1000)


def draft(n: int) -> ReceiptDraft:
    return ReceiptDraft(
        kind=ReceiptKind.REPAYMENT,
        tenant=f"provider:p{n % 17}",
        subject=f"loan:{n}",
        payload={"amount": str(1_000_000 + n), "token": "USDC", "chain_id": 31337, "seq": n},
    )


def run(url: str, receipts: int) -> list[tuple[int, float, int]]:
    settings = Settings(_env_file=None, environment="test", database_url=url)
    migrate(settings)
    engine = create_db_engine(settings)
    factory = create_session_factory(engine)
    signer = signer_from_settings(settings)
    results = []
    try:
        for batch in BATCH_SIZES:
            total = min(receipts, 1000) if batch == 1 else receipts  # batch 1 is slow: fewer
            total -= total % batch
            started = time.perf_counter()
            for start in range(0, total, batch):
                with session_scope(factory) as session:
                    issue_receipts(session, [draft(start + i) for i in range(batch)], signer=signer)
            elapsed = time.perf_counter() - started
            results.append((batch, total / elapsed, total))
    finally:
        engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=5000)
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL")
    if is_postgres(base):
        assert base is not None
        with fresh_postgres_database(base) as url:
            label, results = "PostgreSQL", run(url, args.receipts)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            label, results = "SQLite (WAL)", run(f"sqlite:///{tmp}/bench.db", args.receipts)
    print(f"\nreceipts issued durably into {label}, {os.cpu_count()} CPUs\n")
    print("| batch size | receipts | receipts/s |")
    print("|---:|---:|---:|")
    for batch, rate, total in results:
        print(f"| {batch} | {total} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
