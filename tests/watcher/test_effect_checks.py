"""An effect row still needs its log and still goes with it, whichever way the database checks
(PostgreSQL: one set-based check per statement since 0016_watcher_speed; SQLite: the FK)."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.db import SessionFactory
from backend.watcher.bulk import insert_tuples
from backend.watcher.models import AnchoredEffect, FinalAnchoredEffect, WatcherLog
from backend.watcher.projections import LOG_COLUMNS

CHAIN = 424_242
#: COPY (PostgreSQL) raises the driver's error; executemany (SQLite) SQLAlchemy's.
INTEGRITY_ERRORS = (IntegrityError, psycopg.IntegrityError)
TX, ADDRESS, TOPIC0, DATA = "0x" + "ab" * 32, "0x" + "cd" * 20, "0x" + "11" * 32, bytes(96)


def _logs(blocks: range, per_block: int) -> list[tuple[object, ...]]:
    """Rows of `watcher_logs` (LOG_COLUMNS order), `per_block` logs in each block."""
    return [
        (CHAIN, f"0x{b:064x}", i, b, TX, ADDRESS, TOPIC0, None, None, None, DATA)
        for b in blocks
        for i in range(per_block)
    ]


def _final_effects(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return [(r[0], r[1], r[2], r[3], 7) for r in rows]


FINAL_COLUMNS = ("chain_id", "block_hash", "log_index", "block_number", "tree_size")


def _count(session: Session, model: type[FinalAnchoredEffect] | type[WatcherLog]) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_effects_need_their_log_and_go_with_it(factory: SessionFactory) -> None:
    logs = _logs(range(1, 51), 20)
    with factory() as session, session.begin():
        insert_tuples(session, WatcherLog.__table__, LOG_COLUMNS, logs)
        insert_tuples(session, FinalAnchoredEffect.__table__, FINAL_COLUMNS, _final_effects(logs))
    orphan = _final_effects(_logs(range(51, 52), 1))  # block 51 has no stored log
    for alongside in (0, 3):  # alone, and among valid rows: the whole statement fails
        with pytest.raises(INTEGRITY_ERRORS), factory() as session, session.begin():
            fresh = _logs(range(60, 61), alongside)
            insert_tuples(session, WatcherLog.__table__, LOG_COLUMNS, fresh)
            insert_tuples(
                session,
                FinalAnchoredEffect.__table__,
                FINAL_COLUMNS,
                _final_effects(fresh) + orphan,
            )
    with factory() as session:
        assert _count(session, FinalAnchoredEffect) == 1_000
    with factory() as session, session.begin():
        session.execute(delete(WatcherLog).where(WatcherLog.block_number > 25))
    with factory() as session:
        assert _count(session, WatcherLog) == _count(session, FinalAnchoredEffect) == 500


def test_postgres_checks_effect_logs_per_statement(factory: SessionFactory) -> None:
    with factory() as session:
        if session.get_bind().dialect.name != "postgresql":
            pytest.skip("statement-level checks are a PostgreSQL feature")
        triggers = set(
            session.scalars(
                text(
                    "SELECT tgrelid::regclass::text || ':' || tgname || ':' || tgenabled::text "
                    "FROM pg_trigger WHERE tgrelid IN "
                    "('watcher_anchored'::regclass, 'watcher_final_anchored'::regclass)"
                )
            )
        )
    for table in (AnchoredEffect.__tablename__, FinalAnchoredEffect.__tablename__):
        assert f"{table}:{table}_log_check_insert:O" in triggers
        # the foreign key's own per-row check triggers are there, disabled ("D")
        assert [t for t in triggers if t.startswith(f"{table}:RI_ConstraintTrigger_c_")]
        assert all(
            t.endswith(":D") for t in triggers if t.startswith(f"{table}:RI_ConstraintTrigger_c_")
        )
