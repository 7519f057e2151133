"""Print-only timing of `_raise_alerts` for one `risk` ingestion step after 10k prior effects:
the whole-chain replay it used to do vs the incremental one (not a test; nothing asserted).

    .venv/bin/python -m tests.risk.bench_alerts            # SQLite in a temporary directory
    DATABASE_URL=postgresql+psycopg://... .venv/bin/python -m tests.risk.bench_alerts

Each measured step runs in a SAVEPOINT that is rolled back, so both implementations see the
same database; each is timed `REPEAT` times, alternating, and the median is printed.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.orm import Session

from backend.config import Settings
from backend.db import create_db_engine, create_session_factory, migrate
from backend.risk.alerts import crossings
from backend.risk.models import RiskAlert
from backend.risk.projections import RiskProjection
from backend.risk.repository import RiskRepository
from backend.watcher.bulk import bulk_insert
from backend.watcher.projections import DecodedLog
from tests.backend.conftest import fresh_postgres_database, is_postgres
from tests.risk.test_incremental_alerts import ASSETS, PEOPLE, Event, decoded_logs, ingest

CHAIN_ID = 1
LOANS = 3_000  # x (open, deposit, repay) + 1,000 price updates = 10,000 prior effects
REPEAT = 5
DEBT_FEED, *COLLATERAL_FEEDS = (f"0x{n:040x}" for n in (0xF0, 0xF1, 0xF2, 0xF3))
DEBT, *COLLATERALS = (*ASSETS, f"0x{0xA4:040x}")


class FullReplayProjection(RiskProjection):
    """`RiskProjection` as it was: `crossings` over every effect of the chain on every step."""

    def _raise_alerts(self, session: Session, logs: Sequence[DecodedLog]) -> None:
        chain_id = logs[0].chain_id
        fresh = {(log.block_hash, log.log_index) for log in logs}
        effects = RiskRepository(session).effects(chain_id)
        bulk_insert(
            session, RiskAlert.__table__, crossings(chain_id, effects, fresh, self.thresholds)
        )


def _config(asset: str, feed: str) -> Event:
    return Event(
        "AssetConfigured",
        {
            "asset": asset,
            "feed": feed,
            "liquidationThresholdBps": 8_000,
            "liquidationBonusBps": 500,
            "tokenDecimals": 0,
            "feedDecimals": 0,
        },
    )


def _price(feed: str, answer: int) -> Event:
    return Event("AnswerUpdated", {"roundId": 1, "answer": answer, "updatedAt": 0}, feed)


def _repay(loan: int, left: int) -> Event:
    return Event("RepaymentRecorded", {"loanId": loan, "amount": 1, "outstandingAfter": left})


def history() -> list[Event]:
    """Configs, then LOANS loans spread over three collateral assets with a price move after
    every third loan: health ~1.6, above every threshold."""
    events = [_config(DEBT, DEBT_FEED), _price(DEBT_FEED, 1)]
    events += [_config(a, f) for a, f in zip(COLLATERALS, COLLATERAL_FEEDS, strict=True)]
    for loan in range(1, LOANS + 1):
        collateral = COLLATERALS[loan % 3]
        opened = {
            "loanId": loan,
            "borrower": PEOPLE[0],
            "provider": PEOPLE[1],
            "asset": DEBT,
            "collateralAsset": collateral,
            "principal": 1_001,
        }
        events += [
            Event("LoanOpened", opened),
            Event("Deposited", {"loanId": loan, "amount": 1, "balance": 1}),
            _repay(loan, 1_000),
        ]
        if loan % 3 == 0:
            events.append(_price(COLLATERAL_FEEDS[loan // 3 % 3], 2_000 + loan % 7))
    return events


def steps() -> dict[str, list[Event]]:
    """What one ingestion step brings, by kind."""
    return {
        "1 repayment": [_repay(7, 999)],
        "10 loan logs": [_repay(i, 990) for i in range(10, 110, 10)],
        "1 price drop (1,000 loans)": [_price(COLLATERAL_FEEDS[0], 1_400)],
    }


@contextmanager
def database() -> Iterator[str]:
    base = os.environ.get("DATABASE_URL")
    with tempfile.TemporaryDirectory() as tmp:
        if is_postgres(base):
            assert base is not None
            with fresh_postgres_database(base) as url:
                yield url
        else:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"


class _Silent(RiskProjection):
    """Stores a step's effect rows without raising alerts (the untimed part of a step)."""

    def _raise_alerts(self, session: Session, logs: Sequence[DecodedLog]) -> None:
        return None


def timed(session: Session, projection: RiskProjection, batch: Sequence[DecodedLog]) -> float:
    """Seconds `projection._raise_alerts` takes for `batch` (stored, then rolled back)."""
    nested = session.begin_nested()
    ingest(session, _Silent(), batch)
    start = time.perf_counter()
    projection._raise_alerts(session, batch)
    session.flush()
    elapsed = time.perf_counter() - start
    nested.rollback()
    return elapsed


def main() -> None:
    with database() as url, tempfile.TemporaryDirectory() as data:
        settings = Settings(
            _env_file=None, environment="test", database_url=url, data_dir=Path(data)
        )
        migrate(settings)
        engine = create_db_engine(settings)
        prior = history()
        events = prior + [event for step in steps().values() for event in step]
        logs = decoded_logs(CHAIN_ID, events, [True] * len(events))
        with create_session_factory(engine)() as session, session.begin():
            for start in range(0, len(prior), 1_000):
                ingest(session, RiskProjection(), logs[start : min(start + 1_000, len(prior))])
            stored = len(RiskRepository(session).effects(CHAIN_ID))
            print(f"{engine.dialect.name}: {stored} prior effects")
            offset = len(prior)
            for name, events in steps().items():
                batch = logs[offset : offset + len(events)]
                offset += len(events)
                old: list[float] = []
                new: list[float] = []
                for _ in range(REPEAT):
                    old.append(timed(session, FullReplayProjection(), batch))
                    new.append(timed(session, RiskProjection(), batch))
                print(
                    f"  step of {name:28s} full replay {statistics.median(old) * 1e3:8.1f} ms"
                    f"   incremental {statistics.median(new) * 1e3:8.1f} ms"
                )
        engine.dispose()


if __name__ == "__main__":
    main()
