"""The Celery application, built from `Settings`.

Run a worker (with the beat scheduler embedded) with

    celery -A backend.worker:celery_app worker -B --pool=solo      # embedded default (SQLite)
    celery -A backend.worker:celery_app worker -B                  # REDIS_URL set

Choices, and why:
* JSON only, in and out: a pickle payload from a compromised broker is remote code execution.
* `task_acks_late` + `task_reject_on_worker_lost`: a task is acknowledged after it finished, so a
  worker killed mid-task leaves the message to be redelivered instead of lost. Tasks must
  therefore be idempotent (they take ids, reload rows, and use insert-if-absent).
* `worker_prefetch_multiplier=1`: with late acks, a prefetched message is blocked behind a long
  task on a busy worker; one at a time keeps redelivery and fairness predictable.
* No `REDIS_URL`: the broker is kombu's SQLAlchemy transport on a SQLite file and results go to
  another SQLite file, both under the data dir, so a laptop needs no server. That transport polls
  (about one second latency) and keeps delivered messages in its table; it is for one machine.
  Unacknowledged messages return to the queue when a worker shuts down cleanly; a worker killed
  with SIGKILL can strand the message it held, which Redis (visibility timeout) does not.

Tasks are named `domain.action` and live in `backend/<domain>/tasks.py` (autodiscovered).
They get a database session from `task_session(app)`, which commits when the task body returns.
"""

from __future__ import annotations

import logging
import os
import pkgutil
from contextlib import AbstractContextManager
from datetime import timedelta
from importlib.util import find_spec
from typing import Any

from celery import Celery, current_task
from celery.signals import setup_logging
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import backend
from backend.config import Settings, get_settings
from backend.db import SessionFactory, create_db_engine, create_session_factory, session_scope
from backend.observability.logs import configure_logging


class CredaggCelery(Celery):  # type: ignore[misc]
    """A Celery app that knows its `Settings` and owns one engine per worker process."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__("credagg", **kwargs)
        self.settings = settings
        self._engine: Engine | None = None
        self._session_factory: SessionFactory | None = None
        self._engine_pid: int | None = None

    @property
    def session_factory(self) -> SessionFactory:
        """Created on first use in each process: a pool inherited across fork() is unusable."""
        if self._session_factory is None or self._engine_pid != os.getpid():
            if self._engine is not None:
                self._engine.dispose(close=False)
            self._engine = create_db_engine(self.settings)
            self._session_factory = create_session_factory(self._engine)
            self._engine_pid = os.getpid()
        return self._session_factory

    @property
    def engine(self) -> Engine:
        """This process's engine (for locks that need their own connection)."""
        bind = self.session_factory.kw["bind"]
        assert isinstance(bind, Engine)
        return bind

    def dispose_engine(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        self._engine = None
        self._session_factory = None


def task_packages() -> list[str]:
    """`backend.<domain>` for every domain that has a `tasks.py`."""
    packages: list[str] = []
    for info in pkgutil.iter_modules(backend.__path__):
        name = f"backend.{info.name}"
        if info.ispkg and find_spec(f"{name}.tasks") is not None:
            packages.append(name)
    return packages


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Periodic tasks (`{"name": {"task": "domain.action", "schedule": seconds}}`).

    Domains add their entries here, derived from `settings`, so the schedule is reviewed in
    one place. Anchoring needs chains, so it is scheduled only when a chains file is configured.
    """
    schedule: dict[str, dict[str, Any]] = {}
    schedule["audit-checkpoint"] = {
        "task": "audit.checkpoint",
        "schedule": settings.audit_checkpoint_interval,
    }
    schedule["providers-deliver-due"] = {
        "task": "providers.deliver_due",
        "schedule": settings.webhook_sweep_interval,
    }
    schedule["idempotency-purge"] = {"task": "idempotency.purge_expired", "schedule": 3600.0}
    if settings.chains_file is not None:
        schedule["receipts-anchor"] = {
            "task": "receipts.anchor",
            "schedule": settings.anchor_check_interval,
        }
        schedule["watcher-ingest"] = {
            "task": "watcher.ingest",
            "schedule": settings.watcher_interval,
        }
        schedule["billing-statements"] = {"task": "billing.generate_statements", "schedule": 3600.0}
    return schedule


def create_celery_app(settings: Settings) -> CredaggCelery:
    """Build the Celery app for `settings` (embedded SQLite broker unless `REDIS_URL` is set)."""
    if settings.embedded_broker:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = CredaggCelery(settings)
    app.conf.update(
        broker_url=settings.celery_broker_url,
        result_backend=settings.celery_result_backend,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=True,
        result_expires=timedelta(days=1),
        broker_connection_retry_on_startup=True,
        enable_utc=True,
        timezone="UTC",
        worker_hijack_root_logger=False,
        beat_schedule=beat_schedule(settings),
        beat_schedule_filename=str(settings.beat_schedule_path),
    )
    if settings.embedded_broker:
        # Several processes share these files; wait for a lock rather than fail at once.
        app.conf.broker_transport_options = {"connect_args": {"timeout": 30}}
        app.conf.database_engine_options = {"connect_args": {"timeout": 30}}
    app.autodiscover_tasks(task_packages)
    return app


def worker_argv(
    python: str, settings: Settings, *, beat: bool = True, extra: tuple[str, ...] = ()
) -> list[str]:
    """The `celery worker` command line for `settings` (used by `credagg dev` and the tests).

    On the embedded SQLite broker the pool is solo: SQLite has one writer, and one process
    polling it is all a laptop needs. On Redis a thread pool works several tasks at once.
    """
    pool = (
        ("--pool", "solo")
        if settings.embedded_broker
        else ("--pool", "threads", "--concurrency", "4")
    )
    argv = [python, "-m", "celery", "-A", "backend.worker:celery_app", "worker", *pool]
    if beat:
        argv += ["--beat", "--schedule", str(settings.beat_schedule_path)]
    return [*argv, "--loglevel", "INFO", *extra]


def task_session(app: object) -> AbstractContextManager[Session]:
    """The unit of work of a task: `with task_session(self.app) as session: ...`.

    Commits when the block exits normally, rolls back when it raises (and the task's retry
    policy then decides what happens to the message).
    """
    if not isinstance(app, CredaggCelery):
        raise TypeError(
            "tasks must run under backend.worker's Celery app "
            "(celery -A backend.worker:celery_app worker)"
        )
    return session_scope(app.session_factory)


class TaskContextFilter(logging.Filter):
    """Add `task_id` and `task_name` to log records emitted while a task runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        task = current_task
        if task is not None and getattr(task, "request", None) is not None:
            task_id = getattr(task.request, "id", None)
            if task_id:
                record.task_id = task_id
                record.task_name = task.name
        return True


@setup_logging.connect
def _configure_worker_logging(**_kwargs: Any) -> None:
    """Connected so Celery does not install its own text logging: workers log JSON too."""
    from celery import current_app

    settings = getattr(current_app, "settings", None)
    level = settings.log_level if isinstance(settings, Settings) else get_settings().log_level
    configure_logging(level, filters=[TaskContextFilter()])


_celery_app: CredaggCelery | None = None


def get_celery_app() -> CredaggCelery:
    """The process's Celery app, built from `get_settings()` on first use."""
    global _celery_app
    if _celery_app is None:
        _celery_app = create_celery_app(get_settings())
    return _celery_app


def __getattr__(name: str) -> Any:
    # `celery -A backend.worker:celery_app` resolves the attribute lazily (PEP 562), so importing
    # this module (in tests, in the API) does not read the environment or create files.
    if name == "celery_app":
        return get_celery_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
