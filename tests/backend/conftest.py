"""Real parts for backend tests: a migrated database, apps built from test settings, JSON log
capture, and Celery workers run as real subprocesses.

The database is PostgreSQL when `DATABASE_URL` points at one (CI): a fresh database
`credagg_test_<random>` is created next to it for this session and dropped afterwards, because
the database named in `DATABASE_URL` is shared with other suites. Otherwise it is a SQLite file,
the embedded default.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app import create_app
from backend.config import Settings
from backend.db import create_db_engine, create_session_factory, migrate
from backend.kit.throwaway_db import fresh_postgres_database, is_postgres
from backend.observability.logs import configure_logging
from backend.worker import worker_argv
from chain_adapters.devnet import die_with_parent

ROOT = Path(__file__).resolve().parents[2]
LOCAL_REDIS = "redis://127.0.0.1:6379/15"


@pytest.fixture(autouse=True)
def _no_credagg_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings in these tests come from arguments, never from a developer's CREDAGG_* env."""
    for name in list(os.environ):
        if name.startswith("CREDAGG_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def backend_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated to head once for the session (tests write rows with unique keys)."""
    base = os.environ.get("DATABASE_URL")
    if is_postgres(base):
        assert base is not None
        with fresh_postgres_database(base) as url:
            migrate(Settings(_env_file=None, environment="test", database_url=url))
            yield url
    else:
        path = tmp_path_factory.mktemp("backend-db") / "credagg.db"
        url = f"sqlite:///{path}"
        migrate(Settings(_env_file=None, environment="test", database_url=url))
        yield url


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(tmp_path: Path, backend_database_url: str) -> SettingsFactory:
    """Settings for one test: its own data dir, the session database, Redis if CI has one."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "test",
            "data_dir": tmp_path / "data",
            "database_url": backend_database_url,
            "redis_url": os.environ.get("REDIS_URL"),
            "readiness_timeout": 3.0,
            "chain_probe_timeout": 1.0,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def observer(settings: Settings) -> Iterator[Session]:
    """A session on its own engine: sees only what other connections committed."""
    engine = create_db_engine(settings)
    session = create_session_factory(engine)()
    try:
        yield session
    finally:
        session.close()
        engine.dispose()


@pytest.fixture
def db_session(settings: Settings) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test (nothing persists).

    Service code may commit-free `flush()` freely; `session.commit()` only releases a SAVEPOINT.
    Do not combine with a second connection on SQLite: the open transaction holds the write lock.
    """
    engine = create_db_engine(settings)
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()
        connection.close()
        engine.dispose()


class JsonLogs:
    """The JSON lines written through `configure_logging` while a test runs."""

    def __init__(self, buffer: io.StringIO) -> None:
        self.buffer = buffer

    def lines(self) -> list[str]:
        return [line for line in self.buffer.getvalue().splitlines() if line.strip()]

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]

    def find(self, **fields: Any) -> list[dict[str, Any]]:
        return [r for r in self.records() if all(r.get(k) == v for k, v in fields.items())]


@pytest.fixture
def json_logs() -> Iterator[JsonLogs]:
    root = logging.getLogger()
    previous_level = root.level
    buffer = io.StringIO()
    handler = configure_logging("INFO", stream=buffer)
    try:
        yield JsonLogs(buffer)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """REDIS_URL (CI), else the local server's db 15 if it answers, else skip."""
    url = os.environ.get("REDIS_URL")
    if url:
        return url
    client = redis.Redis.from_url(LOCAL_REDIS, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"REDIS_URL is not set and no Redis answers at {LOCAL_REDIS}: {exc}")
    finally:
        client.close()
    return LOCAL_REDIS


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    queue: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """SIGTERM to the worker's process group (it is its leader), SIGKILL if it lingers."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            pass


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a `celery -A backend.worker:celery_app` see `settings`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CREDAGG_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        CREDAGG_ENVIRONMENT=settings.environment,
        CREDAGG_DATA_DIR=str(settings.data_dir),
        CREDAGG_LOG_LEVEL="INFO",
        DATABASE_URL=settings.effective_database_url,
        PYTHONPATH=str(ROOT),
    )
    if settings.redis_url:
        env["REDIS_URL"] = settings.redis_url
    return env


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[Settings], WorkerProcess]]:
    """Start real `celery worker` subprocesses; every one is killed at teardown, pass or fail.

    Each worker consumes only its own queue, so a test never races another suite's worker on a
    shared Redis. The children also die with pytest itself (PR_SET_PDEATHSIG).
    """
    workers: list[WorkerProcess] = []

    def start(settings: Settings) -> WorkerProcess:
        queue = f"credagg-test-{uuid.uuid4().hex[:10]}"
        log_path = tmp_path / f"worker-{queue}.log"
        args = worker_argv(
            sys.executable,
            settings,
            extra=(
                "--queues",
                queue,
                "--hostname",
                f"{queue}@%h",
                "--without-mingle",
                "--without-gossip",
            ),
        )
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                args,
                cwd=ROOT,
                env=worker_env(settings),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        worker = WorkerProcess(process=process, log_path=log_path, queue=queue)
        workers.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in workers:
            worker.stop()


def wait_for(predicate: Callable[[], bool], *, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@dataclass
class KillableWorker:
    """A `celery worker` subprocess that a crash test may SIGKILL at any moment."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def ready(self) -> bool:
        return " ready." in self.log()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


class KillableWorkers:
    """Workers started one after another on one fixed queue (no beat), so each new worker takes
    over what a killed one left queued: the shape of every kill -9 test."""

    def __init__(
        self, settings: Settings, log_dir: Path, *, name: str, env: dict[str, str] | None = None
    ) -> None:
        self.settings, self.log_dir = settings, log_dir
        self.queue = f"credagg-{name}-{uuid.uuid4().hex[:10]}"
        self.env = {**worker_env(settings), **(env or {})}
        self.started: list[KillableWorker] = []

    def start(self) -> KillableWorker:
        number = len(self.started)
        log_path = self.log_dir / f"worker-{number}.log"
        args = worker_argv(
            sys.executable,
            self.settings,
            beat=False,
            extra=(
                "--queues",
                self.queue,
                "--hostname",
                f"{self.queue}-{number}@%h",
                "--without-mingle",
                "--without-gossip",
            ),
        )
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                args,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        self.started.append(KillableWorker(process, log_path))
        return self.started[-1]

    def kill_all(self) -> None:
        for worker in self.started:
            worker.kill()
