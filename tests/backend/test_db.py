"""Units of work: the request dependency and the task scope commit or roll back, never services."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.config import Settings
from backend.db import SessionDep, create_db_engine, create_session_factory, session_scope
from backend.exceptions import Conflict
from backend.system.models import WorkerHeartbeat
from backend.system.repository import WorkerHeartbeatRepository
from backend.system.service import record_heartbeat


class DuplicatePing(Conflict):
    """A test-only domain error raised after the service already flushed a row."""

    code = "duplicate_ping"


@pytest.fixture
def unit_of_work_app(app: FastAPI) -> FastAPI:
    @app.post("/test/heartbeats/{nonce}")
    def create(nonce: str, session: SessionDep) -> dict[str, int]:
        heartbeat = record_heartbeat(session, nonce=nonce, hostname="api", task_id=None)
        return {"id": heartbeat.id}

    @app.post("/test/heartbeats/{nonce}/then-fail")
    def create_then_fail(nonce: str, session: SessionDep) -> None:
        record_heartbeat(session, nonce=nonce, hostname="api", task_id=None)
        raise DuplicatePing(f"ping {nonce} already recorded", hint="use a new nonce")

    @app.post("/test/heartbeats/{nonce}/then-crash")
    def create_then_crash(nonce: str, session: SessionDep) -> None:
        record_heartbeat(session, nonce=nonce, hostname="api", task_id=None)
        raise RuntimeError("bug after flush")

    return app


def test_request_session_commits_when_the_endpoint_succeeds(
    unit_of_work_app: FastAPI, client: TestClient, observer: Session
) -> None:
    nonce = uuid.uuid4().hex
    response = client.post(f"/test/heartbeats/{nonce}")
    assert response.status_code == 200
    stored = WorkerHeartbeatRepository(observer).get_by_nonce(nonce)
    assert stored is not None
    assert stored.id == response.json()["id"]


@pytest.mark.parametrize(("suffix", "status"), [("then-fail", 409), ("then-crash", 500)])
def test_request_session_rolls_back_when_the_endpoint_raises(
    unit_of_work_app: FastAPI, client: TestClient, observer: Session, suffix: str, status: int
) -> None:
    nonce = uuid.uuid4().hex
    response = client.post(f"/test/heartbeats/{nonce}/{suffix}")
    assert response.status_code == status
    assert WorkerHeartbeatRepository(observer).get_by_nonce(nonce) is None


def test_task_scope_commits_or_rolls_back(settings: Settings, observer: Session) -> None:
    engine = create_db_engine(settings)
    factory = create_session_factory(engine)
    kept, dropped = uuid.uuid4().hex, uuid.uuid4().hex
    try:
        with session_scope(factory) as session:
            record_heartbeat(session, nonce=kept, hostname="worker", task_id="t1")
        with pytest.raises(RuntimeError), session_scope(factory) as session:
            record_heartbeat(session, nonce=dropped, hostname="worker", task_id="t2")
            raise RuntimeError("task failed")
    finally:
        engine.dispose()
    repository = WorkerHeartbeatRepository(observer)
    assert repository.get_by_nonce(kept) is not None
    assert repository.get_by_nonce(dropped) is None


def test_repository_helpers(db_session: Session) -> None:
    repository = WorkerHeartbeatRepository(db_session)
    before = repository.count()
    created = [
        repository.create(WorkerHeartbeat(nonce=f"n{i}", hostname="h", task_id=None))
        for i in range(3)
    ]
    assert all(h.id is not None for h in created)  # flushed: ids assigned
    assert repository.count() == before + 3
    assert repository.get(created[1].id) is created[1]
    page = repository.list(limit=2, order_by=[WorkerHeartbeat.id.desc()])
    assert [h.id for h in page] == [created[2].id, created[1].id]
    with pytest.raises(ValueError, match="limit"):
        repository.list(limit=0)


def test_timestamps_come_back_aware_utc(db_session: Session) -> None:
    repository = WorkerHeartbeatRepository(db_session)
    local = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    heartbeat = repository.create(
        WorkerHeartbeat(nonce="tz", hostname="h", task_id=None, created_at=local)
    )
    db_session.expire_all()
    reloaded = repository.get(heartbeat.id)
    assert reloaded is not None
    assert reloaded.created_at == local
    assert reloaded.created_at.tzinfo is not None
    assert reloaded.created_at.utcoffset() == timedelta(0)
    with pytest.raises(Exception, match="naive datetime"):
        naive = datetime(2024, 1, 1)  # no tzinfo: the point of the test
        repository.create(
            WorkerHeartbeat(nonce="naive", hostname="h", task_id=None, created_at=naive)
        )


def test_sqlite_connections_enforce_foreign_keys_and_use_wal(tmp_path: Path) -> None:
    """The embedded default's pragmas, checked on a SQLite file whatever DATABASE_URL says."""
    settings = Settings(data_dir=tmp_path, database_url=None, environment="test")
    assert settings.is_sqlite
    engine = create_db_engine(settings)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
            assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert connection.execute(text("PRAGMA busy_timeout")).scalar_one() == 5000
    finally:
        engine.dispose()


def test_savepoints_work_on_every_backend(db_session: Session) -> None:
    repository = WorkerHeartbeatRepository(db_session)
    outer = repository.create(WorkerHeartbeat(nonce="outer", hostname="h", task_id=None))
    savepoint = db_session.begin_nested()
    repository.create(WorkerHeartbeat(nonce="inner", hostname="h", task_id=None))
    savepoint.rollback()
    assert repository.get_by_nonce("inner") is None
    assert repository.get_by_nonce("outer") is outer
    assert datetime.now(UTC) >= outer.created_at
