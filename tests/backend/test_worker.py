"""A real Celery worker (subprocess) executes `system.ping` over each broker we support."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from backend.config import Settings
from backend.system.repository import WorkerHeartbeatRepository
from backend.worker import create_celery_app, task_packages

from .conftest import SettingsFactory, WorkerProcess

ROUND_TRIP_TIMEOUT = 60


def test_celery_app_configuration(make_settings: SettingsFactory) -> None:
    app = create_celery_app(make_settings(redis_url=None))
    conf = app.conf
    assert conf.task_serializer == "json"
    assert conf.result_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_url.startswith("sqla+sqlite:///")
    assert conf.result_backend.startswith("db+sqlite:///")
    assert "backend.system" in task_packages()


def round_trip(settings: Settings, worker: WorkerProcess, observer: Session) -> None:
    client = create_celery_app(settings)
    nonce = uuid.uuid4().hex
    try:
        result = client.send_task("system.ping", args=[nonce], queue=worker.queue)
        try:
            answer = result.get(timeout=ROUND_TRIP_TIMEOUT)
        except Exception as exc:
            raise AssertionError(f"no answer from the worker: {exc!r}\n{worker.log()}") from exc
    finally:
        client.close()
    assert answer["nonce"] == nonce
    assert answer["hostname"].startswith(worker.queue + "@")
    heartbeat = WorkerHeartbeatRepository(observer).get_by_nonce(nonce)
    assert heartbeat is not None, "the task's session did not commit"
    assert heartbeat.hostname == answer["hostname"]
    assert heartbeat.task_id == result.id
    assert '"logger": "celery.apps.worker"' in worker.log()  # the worker logs JSON lines


def test_ping_round_trip_over_the_embedded_sqlite_broker(
    make_settings: SettingsFactory,
    start_worker: Callable[[Settings], WorkerProcess],
    observer: Session,
) -> None:
    settings = make_settings(redis_url=None)
    worker = start_worker(settings)
    round_trip(settings, worker, observer)


@pytest.mark.redis
def test_ping_round_trip_over_redis(
    make_settings: SettingsFactory,
    start_worker: Callable[[Settings], WorkerProcess],
    observer: Session,
    redis_url: str,
) -> None:
    settings = make_settings(redis_url=redis_url)
    worker = start_worker(settings)
    round_trip(settings, worker, observer)


def test_beat_schedules_anchoring_only_with_chains(tmp_path) -> None:
    from backend.worker import beat_schedule

    without = Settings(data_dir=tmp_path, environment="test")
    assert "receipts-anchor" not in beat_schedule(without)
    chains_file = tmp_path / "chains.toml"
    chains_file.write_text("")
    with_chains = Settings(data_dir=tmp_path, environment="test", chains_file=chains_file,
                           anchor_check_interval=7.5)
    assert beat_schedule(with_chains)["receipts-anchor"] == {
        "task": "receipts.anchor",
        "schedule": 7.5,
    }
