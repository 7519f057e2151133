"""Celery tasks of the providers domain: webhook delivery (to providers and wallets alike).

* `providers.deliver(delivery_id)`: one attempt, queued after the transaction that wrote the
  delivery (or a redelivery) committed. It takes an id and reloads the row; a duplicate or late
  message finds the row not due or leased and does nothing.
* `providers.deliver_due()`: the beat sweep. It queues `providers.deliver` for every due
  delivery, on the queue it was itself consumed from. This is what makes delivery crash-safe
  and what runs the retry schedule: retries are rows with a later `next_attempt_at`, not
  Celery countdowns (an ETA hours ahead is fragile in a broker: Redis redelivers unacked
  messages after its visibility timeout).

Neither task raises for a lender's failure: that is recorded on the row and retried by schedule.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from backend.providers.pii import field_cipher
from backend.providers.webhooks.addresses import public_hosts_only
from backend.providers.webhooks.delivery import WebhookSender
from backend.worker import CredaggCelery

logger = logging.getLogger(__name__)

SWEEP_BATCH = 500


def _sender(app: CredaggCelery) -> WebhookSender:
    return WebhookSender(
        app.session_factory,
        field_cipher(app.settings),
        public_hosts_only=public_hosts_only(app.settings),
    )


@shared_task(name="providers.deliver", bind=True)
def deliver(self: Any, delivery_id: int) -> dict[str, Any]:
    """Attempt one webhook delivery if it is due (see backend.providers.webhooks.delivery)."""
    sender = _sender(self.app)
    try:
        result = sender.attempt(int(delivery_id))
    finally:
        sender.close()
    return {
        "delivery_id": result.delivery_id,
        "attempted": result.attempted,
        "status": result.status,
        "status_code": result.status_code,
    }


@shared_task(name="providers.deliver_due", bind=True)
def deliver_due(self: Any) -> dict[str, Any]:
    """Queue `providers.deliver` for every due delivery (duplicates are harmless)."""
    sender = _sender(self.app)
    try:
        due = sender.due(limit=SWEEP_BATCH)
    finally:
        sender.close()
    delivery_info = getattr(self.request, "delivery_info", None) or {}
    queue = delivery_info.get("routing_key")
    for delivery_id in due:
        deliver.apply_async(args=[delivery_id], queue=queue)
    if due:
        logger.info("queued %d due webhook deliveries", len(due))
    return {"queued": due}
