"""A real Celery worker subprocess delivers webhooks: queued after commit, and by the sweep."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from backend.config import Settings
from backend.db import create_db_engine, create_session_factory, session_scope
from backend.providers.models import WebhookAttempt, WebhookDelivery
from backend.providers.pii import field_cipher
from backend.providers.service import enqueue_event, put_webhook
from backend.providers.webhooks.delivery import BACKOFF_SCHEDULE, CeleryDispatcher
from backend.worker import create_celery_app
from tests.backend.conftest import WorkerProcess, wait_for
from tests.support.webhooks import Receiver

from .conftest import SettingsFactory, create_provider

TIMEOUT = 90


def _status(settings: Settings, delivery_id: int) -> str | None:
    engine = create_db_engine(settings)
    try:
        with session_scope(create_session_factory(engine)) as session:
            row = session.get(WebhookDelivery, delivery_id)
            return row.status if row else None
    finally:
        engine.dispose()


def _run(
    settings: Settings,
    start_worker: Callable[[Settings], WorkerProcess],
    receiver: Receiver,
    *,
    via_sweep: bool,
) -> None:
    worker = start_worker(settings)
    client = create_celery_app(settings)
    engine = create_db_engine(settings)
    try:
        provider_id, _ = create_provider(settings)
        factory = create_session_factory(engine)
        with session_scope(factory) as session:
            view = put_webhook(
                session,
                provider_id,
                receiver.url,
                settings=settings,
                cipher=field_cipher(settings),
            )
        receiver.secrets = [view.secret or ""]
        dispatcher = None if via_sweep else CeleryDispatcher(client, queue=worker.queue)
        with session_scope(factory) as session:
            delivery_id = enqueue_event(
                session, provider_id, "loan.opened", {"loan_id": "7"}, dispatcher=dispatcher
            )
        if via_sweep:
            client.send_task("providers.deliver_due", queue=worker.queue)
        delivered = wait_for(
            lambda: _status(settings, delivery_id) == "delivered", timeout=TIMEOUT, interval=0.3
        )
        assert delivered, f"not delivered: {_status(settings, delivery_id)}\n{worker.log()[-4000:]}"
    finally:
        client.close()
        engine.dispose()
    mine = [r for r in receiver.received if r.json()["data"] == {"loan_id": "7"}]
    assert len(mine) == 1 and mine[0].error is None  # verified with the copyable verifier


def test_worker_delivers_after_commit_over_the_embedded_broker(
    make_settings: SettingsFactory,
    start_worker: Callable[[Settings], WorkerProcess],
    receiver: Receiver,
) -> None:
    _run(make_settings(redis_url=None), start_worker, receiver, via_sweep=False)


def test_worker_sweep_delivers_what_was_never_queued(
    make_settings: SettingsFactory,
    start_worker: Callable[[Settings], WorkerProcess],
    receiver: Receiver,
) -> None:
    _run(make_settings(redis_url=None), start_worker, receiver, via_sweep=True)


@pytest.mark.redis
def test_worker_delivers_over_redis(
    make_settings: SettingsFactory,
    start_worker: Callable[[Settings], WorkerProcess],
    receiver: Receiver,
    redis_url: str,
) -> None:
    _run(make_settings(redis_url=redis_url), start_worker, receiver, via_sweep=False)


def test_worker_records_a_failed_attempt_and_schedules_the_retry(
    make_settings: SettingsFactory,
    start_worker: Callable[[Settings], WorkerProcess],
    receiver: Receiver,
) -> None:
    settings = make_settings(redis_url=None)
    receiver.fail_next = 1
    worker = start_worker(settings)
    client = create_celery_app(settings)
    engine = create_db_engine(settings)
    factory = create_session_factory(engine)
    try:
        provider_id, _ = create_provider(settings)
        with session_scope(factory) as session:
            view = put_webhook(
                session,
                provider_id,
                receiver.url,
                settings=settings,
                cipher=field_cipher(settings),
            )
        receiver.secrets = [view.secret or ""]
        with session_scope(factory) as session:
            delivery_id = enqueue_event(
                session,
                provider_id,
                "loan.opened",
                {"retry": True},
                dispatcher=CeleryDispatcher(client, queue=worker.queue),
            )

        def attempted() -> bool:
            with session_scope(factory) as session:
                row = session.get(WebhookDelivery, delivery_id)
                return row is not None and row.attempt_count == 1

        assert wait_for(attempted, timeout=TIMEOUT, interval=0.3), worker.log()[-4000:]
        with session_scope(factory) as session:
            row = session.get(WebhookDelivery, delivery_id)
            assert row is not None
            assert row.status == "pending" and row.last_status_code == 500
            assert row.leased_until is None and row.next_attempt_at is not None
            [attempt] = session.query(WebhookAttempt).filter_by(delivery_id=delivery_id).all()
            assert row.next_attempt_at - attempt.started_at >= BACKOFF_SCHEDULE[0]
    finally:
        client.close()
        engine.dispose()
