"""A wallet's webhook through the real path: a real Celery worker subprocess attempts it, the
receiver fails once (500), the wallet sees the failed attempt and asks for a redelivery over
HTTP, and the worker delivers it signed with the wallet's secret."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from backend.config import Settings
from backend.db import SessionFactory, session_scope
from backend.providers.deps import DISPATCHER_STATE
from backend.providers.webhooks import subscriptions
from backend.providers.webhooks.delivery import CeleryDispatcher
from backend.providers.webhooks.subscribers import Subscriber
from backend.worker import create_celery_app
from tests.backend.conftest import WorkerProcess, wait_for
from tests.support.webhooks import Receiver

from .conftest import Wallet

TIMEOUT = 90


def test_the_worker_retries_and_redelivers_a_wallet_webhook(
    client: TestClient,
    settings: Settings,
    session_factory: SessionFactory,
    start_worker: Callable[[Settings], WorkerProcess],
    receiver: Receiver,
    wallet: Wallet,
) -> None:
    worker = start_worker(settings)
    celery = create_celery_app(settings)
    dispatcher = CeleryDispatcher(celery, queue=worker.queue)
    setattr(client.app.state, DISPATCHER_STATE, dispatcher)  # type: ignore[attr-defined]
    try:
        put = client.put("/v1/me/webhook", headers=wallet.headers, json={"url": receiver.url})
        assert put.status_code == 200, put.text
        receiver.secrets = [put.json()["secret"]]
        receiver.fail_next = 1
        with session_scope(session_factory) as session:
            delivery_id = subscriptions.enqueue(
                session,
                Subscriber.wallet(wallet.address),
                "risk.alert",
                {"loan_id": "7", "threshold": "1.5"},
                dispatcher=dispatcher,
            )
        path = f"/v1/me/webhook/deliveries/{delivery_id}"

        def attempts() -> int:
            return int(client.get(path, headers=wallet.headers).json()["attempt_count"])

        assert wait_for(lambda: attempts() == 1, timeout=TIMEOUT, interval=0.3), worker.log()
        failed = client.get(path, headers=wallet.headers).json()
        assert failed["status"] == "pending" and failed["last_status_code"] == 500
        assert failed["next_attempt_at"] is not None  # the retry schedule took over

        again = client.post(f"{path}/redeliver", headers=wallet.headers)
        assert again.status_code == 202, again.text

        def delivered() -> bool:
            return bool(client.get(path, headers=wallet.headers).json()["status"] == "delivered")

        assert wait_for(delivered, timeout=TIMEOUT, interval=0.3), worker.log()[-4000:]
    finally:
        celery.close()
    detail = client.get(path, headers=wallet.headers).json()
    assert [a["status_code"] for a in detail["attempts"]] == [500, 200]
    assert [r.json()["data"]["loan_id"] for r in receiver.verified()] == ["7", "7"]
    assert receiver.verified()[-1].headers["Credagg-Event-Type"] == "risk.alert"
