"""Durable webhook delivery: the outbox rows of `webhook_deliveries`, attempted by Celery.

One engine serves both kinds of subscriber (a provider or a wallet, `subscribers.Subscriber`):
only the endpoint row and its sealing differ.

The row is the schedule. `enqueue` writes it in the caller's transaction with
`next_attempt_at = now`; after that transaction commits, a `providers.deliver` task is queued
for a fast first attempt (`dispatch_after_commit`). If the commit never happens nothing is
queued; if the process dies between commit and queueing, or the broker loses the message, the
`providers.deliver_due` beat sweep finds the row anyway. So a Celery message is only ever a
hint, and retries never depend on long countdowns surviving in the broker.

One attempt (`WebhookSender.attempt`):
1. claim: a conditional UPDATE sets a lease on the row if it is pending, due and unleased;
   a second worker given the same id loses and does nothing (duplicates are harmless);
2. commit, then POST outside any transaction (no database lock is held while a lender's
   server thinks), with a timeout and no redirects;
3. record the attempt in `webhook_attempts` and move the row on: 2xx -> delivered; otherwise
   the next slot of `BACKOFF_SCHEDULE`, or failed once it is exhausted. If the lease had
   lapsed and another worker re-claimed the row meanwhile, this result is logged and dropped.

A worker killed between 1 and 3 leaves a lease that lapses after `LEASE`; the sweep then tries
again. Delivery is therefore at least once: receivers dedupe on `Credagg-Event-Id`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
from sqlalchemy import event
from sqlalchemy.orm import Session

from backend.db import SessionFactory, session_scope
from backend.kit.columns import utcnow
from backend.kit.crypto import FieldCipher
from backend.providers.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpointColumns,
)
from backend.providers.repository import DeliveryQueue
from backend.providers.webhooks.addresses import pin_public_address
from backend.providers.webhooks.repository import endpoint_of
from backend.providers.webhooks.signing import SIGNATURE_HEADER, signature_header
from backend.providers.webhooks.subscribers import Subscriber

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

#: Wait after the 1st, 2nd, ... failed attempt of a schedule; after the last, the delivery fails.
BACKOFF_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=12),
)
MAX_ATTEMPTS = len(BACKOFF_SCHEDULE) + 1
REQUEST_TIMEOUT_SECONDS = 10.0
#: Longer than any attempt can take (timeout + bookkeeping), so a live attempt keeps its lease.
LEASE = timedelta(seconds=60)
EXCERPT_CHARS = 512
USER_AGENT = "credagg-webhooks/1"


def next_attempt_at(failures_in_schedule: int, now: datetime) -> datetime | None:
    """When to try again after the `failures_in_schedule`-th failure (1-based); None: give up."""
    if failures_in_schedule < 1:
        raise ValueError("failures_in_schedule counts from 1")
    if failures_in_schedule > len(BACKOFF_SCHEDULE):
        return None
    return now + BACKOFF_SCHEDULE[failures_in_schedule - 1]


def render_body(delivery: WebhookDelivery) -> bytes:
    """The request body: the same bytes on every attempt (only the signature's t changes)."""
    envelope = {
        "id": delivery.event_id,
        "type": delivery.event_type,
        "created_at": delivery.created_at.isoformat().replace("+00:00", "Z"),
        "data": delivery.payload,
    }
    return json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class SecretOpener(Protocol):
    """Decrypts one subscriber's secret columns (`EndpointSealer`, `ProviderSealer`)."""

    def open(self, stored: str | None, table: str, column: str) -> str | None: ...


def signing_secrets(
    endpoint: WebhookEndpointColumns, sealer: SecretOpener, now: datetime
) -> list[str]:
    """The current secret, and the previous one while its rotation grace period lasts."""
    table: str = getattr(endpoint, "__tablename__")  # noqa: B009 - set on the mapped subclass
    secrets = [sealer.open(endpoint.secret, table, "secret")]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret is not None and expires is not None and now < expires:
        secrets.append(sealer.open(endpoint.previous_secret, table, "previous_secret"))
    return [secret for secret in secrets if secret is not None]


@dataclass(frozen=True)
class AttemptResult:
    """What one call of `WebhookSender.attempt` did (`attempted` False: not ours to send)."""

    delivery_id: int
    attempted: bool
    status: str | None = None
    status_code: int | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None


@dataclass(frozen=True)
class _Request:
    url: str | None  # what the attempt log shows (the endpoint as configured)
    body: bytes
    headers: dict[str, str]
    error: str | None  # set when we must not send (no endpoint, or a refused address)
    target: str | None = None  # where to connect, if not `url` (a pinned public address)
    extensions: dict[str, Any] | None = None


class WebhookSender:
    """Attempts deliveries. `clock` is injectable so tests drive the schedule without sleeping.

    With `public_hosts_only` (production: `addresses.public_hosts_only(settings)`) every
    attempt resolves the endpoint's host, refuses non-public addresses (logged as the
    attempt's error) and connects to the address it checked.
    """

    def __init__(
        self,
        factory: SessionFactory,
        cipher: FieldCipher,
        *,
        clock: Clock = utcnow,
        http: httpx.Client | None = None,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        public_hosts_only: bool = False,
    ) -> None:
        self.factory = factory
        self.cipher = cipher
        self.clock = clock
        self.public_hosts_only = public_hosts_only
        self._http = http
        self._owns_http = http is None
        self.timeout = timeout

    @property
    def http(self) -> httpx.Client:
        """The HTTP client (made on first use: the sweep never needs one)."""
        if self._http is None:
            self._http = httpx.Client(timeout=self.timeout, follow_redirects=False)
        return self._http

    def close(self) -> None:
        if self._owns_http and self._http is not None:
            self._http.close()
            self._http = None

    def due(self, *, limit: int = 100) -> list[int]:
        """Ids of deliveries due now (for the sweep)."""
        with session_scope(self.factory) as session:
            return DeliveryQueue(session).due_ids(now=self.clock(), limit=limit)

    def attempt(self, delivery_id: int) -> AttemptResult:
        """Make one attempt of `delivery_id` if it is due and nobody else holds it."""
        started = self.clock()
        lease_until = started + LEASE
        with session_scope(self.factory) as session:
            queue = DeliveryQueue(session)
            if not queue.claim(delivery_id, now=started, lease_until=lease_until):
                return AttemptResult(delivery_id, attempted=False)
            delivery = queue.get(delivery_id)
            assert delivery is not None  # we just leased it
            request = self._prepare(queue, delivery, started)
            attempt_number = delivery.attempt_count + 1
        # Outside the transaction: a slow resolver must not hold the claim's lock.
        status_code, error, excerpt, elapsed_ms = self._post(self._pin(request))
        finished = self.clock()
        with session_scope(self.factory) as session:
            queue = DeliveryQueue(session)
            delivery = queue.held(delivery_id, lease_until)
            if delivery is None:
                logger.warning(
                    "webhook delivery %s was re-claimed while attempt %s ran; result dropped",
                    delivery_id,
                    attempt_number,
                )
                return AttemptResult(delivery_id, attempted=True, status_code=status_code)
            queue.add_attempt(
                WebhookAttempt(
                    delivery_id=delivery.id,
                    provider_id=delivery.provider_id,
                    wallet=delivery.wallet,
                    attempt_number=attempt_number,
                    url=request.url,
                    started_at=started,
                    duration_ms=elapsed_ms,
                    status_code=status_code,
                    error=error,
                    response_excerpt=excerpt,
                )
            )
            self._advance(delivery, status_code=status_code, error=error, now=finished)
            session.flush()
            result = AttemptResult(
                delivery_id,
                attempted=True,
                status=delivery.status,
                status_code=status_code,
                error=error,
                next_attempt_at=delivery.next_attempt_at,
            )
        logger.info(
            "webhook delivery %s attempt %s: %s",
            delivery_id,
            attempt_number,
            result.status,
            extra={"status_code": status_code, "error": error},
        )
        return result

    def _prepare(self, queue: DeliveryQueue, delivery: WebhookDelivery, now: datetime) -> _Request:
        body = render_body(delivery)
        subscriber = Subscriber.of(delivery)
        endpoint = endpoint_of(queue.session, subscriber)
        if endpoint is None:
            return _Request(
                None, body, {}, f"the {subscriber.kind} has no webhook endpoint configured"
            )
        secrets = signing_secrets(endpoint, subscriber.sealer(self.cipher), now)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature_header(secrets, body, timestamp=int(now.timestamp())),
            "Credagg-Event-Id": delivery.event_id,
            "Credagg-Event-Type": delivery.event_type,
            "Credagg-Delivery-Attempt": str(delivery.attempt_count + 1),
        }
        return _Request(endpoint.url, body, headers, None)

    def _pin(self, request: _Request) -> _Request:
        """With `public_hosts_only`: the request to the checked public address, or refused."""
        if not self.public_hosts_only or request.url is None or request.error is not None:
            return request
        pinned = pin_public_address(request.url)
        return replace(
            request,
            headers={**request.headers, **pinned.headers},
            error=pinned.refusal,
            target=pinned.url,
            extensions=pinned.extensions,
        )

    def _post(self, request: _Request) -> tuple[int | None, str | None, str | None, int]:
        """(status code, error, response excerpt, elapsed ms). Never raises for the network."""
        if request.url is None or request.error is not None:
            return None, request.error, None, 0
        began = time.monotonic()
        try:
            response = self.http.post(
                request.target or request.url,
                content=request.body,
                headers=request.headers,
                timeout=self.timeout,
                extensions=request.extensions or None,
            )
        except httpx.TimeoutException:
            error: str | None = f"no answer within {self.timeout:g}s"
            return None, error, None, _ms_since(began)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:EXCERPT_CHARS], None, _ms_since(began)
        excerpt = response.text[:EXCERPT_CHARS] if response.content else None
        error = None if response.is_success else f"endpoint answered HTTP {response.status_code}"
        return response.status_code, error, excerpt, _ms_since(began)

    @staticmethod
    def _advance(
        delivery: WebhookDelivery, *, status_code: int | None, error: str | None, now: datetime
    ) -> None:
        delivery.attempt_count += 1
        delivery.leased_until = None
        delivery.last_status_code = status_code
        delivery.last_error = error
        if error is None:
            delivery.status = DeliveryStatus.DELIVERED.value
            delivery.delivered_at = now
            delivery.next_attempt_at = None
            return
        following = next_attempt_at(delivery.attempt_count - delivery.armed_at_attempt, now)
        delivery.next_attempt_at = following
        if following is None:
            delivery.status = DeliveryStatus.FAILED.value


def _ms_since(began: float) -> int:
    return int((time.monotonic() - began) * 1000)


# Queueing after commit ---------------------------------------------------------------------------


class Dispatcher(Protocol):
    """Queues `providers.deliver` for these ids (best effort: the sweep is the safety net)."""

    def __call__(self, delivery_ids: Sequence[int]) -> None: ...


class CeleryDispatcher:
    """Sends `providers.deliver` through a Celery app, to `queue` (default: Celery's default)."""

    def __init__(self, app: Any, *, queue: str | None = None) -> None:
        self.app = app
        self.queue = queue

    def __call__(self, delivery_ids: Sequence[int]) -> None:
        for delivery_id in delivery_ids:
            try:
                self.app.send_task(
                    "providers.deliver",
                    args=[delivery_id],
                    queue=self.queue,
                    retry_policy={"max_retries": 1, "interval_start": 0.2},
                )
            except Exception:  # the row is committed; the sweep will send it
                logger.warning(
                    "could not queue providers.deliver for delivery %s; the sweep will",
                    delivery_id,
                    exc_info=True,
                )


#: `session.info` key: the dispatcher a request's session queues its deliveries with.
SESSION_DISPATCHER = "providers.webhooks.dispatcher"
_PENDING = "providers.webhooks.pending"


def dispatch_after_commit(session: Session, delivery_id: int, dispatcher: Dispatcher) -> None:
    """Queue `delivery_id` when (and only if) `session`'s transaction commits (CONVENTIONS #9)."""
    pending: list[tuple[Dispatcher, int]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = []
        session.info[_PENDING] = pending
        event.listen(session, "after_commit", _send_pending)
        event.listen(session, "after_rollback", _drop_pending)
    pending.append((dispatcher, delivery_id))


def _send_pending(session: Session) -> None:
    pending: list[tuple[Dispatcher, int]] = session.info.get(_PENDING) or []
    batch = list(pending)
    pending.clear()
    by_dispatcher: dict[int, tuple[Dispatcher, list[int]]] = {}
    for dispatcher, delivery_id in batch:
        by_dispatcher.setdefault(id(dispatcher), (dispatcher, []))[1].append(delivery_id)
    for dispatcher, ids in by_dispatcher.values():
        dispatcher(ids)


def _drop_pending(session: Session) -> None:
    pending: list[tuple[Dispatcher, int]] | None = session.info.get(_PENDING)
    if pending:
        pending.clear()
