"""FastAPI dependencies of the providers domain, reusable by other routers.

`WebhookQueueingSession` is the request session (`SessionDep`) carrying the dispatcher that
queues `providers.deliver` after the request commits. An endpoint elsewhere (credit requests,
acceptances) that calls `backend.providers.service.enqueue_event` should take its session
through it, so the lender hears at once; with a plain `SessionDep` the event is still recorded
and the `providers.deliver_due` sweep sends it within its interval.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from backend.config import Settings
from backend.db import SessionDep
from backend.kit.crypto import FieldCipher
from backend.providers.pii import field_cipher
from backend.providers.webhooks.delivery import SESSION_DISPATCHER, CeleryDispatcher, Dispatcher

#: `app.state` attributes (tests may set the dispatcher to route to their own worker's queue).
DISPATCHER_STATE = "provider_webhook_dispatcher"
CIPHER_STATE = "provider_field_cipher"


def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def provider_cipher(request: Request) -> FieldCipher:
    """The app's field cipher, built once from its settings (async: no I/O, no thread hop)."""
    cipher: FieldCipher | None = getattr(request.app.state, CIPHER_STATE, None)
    if cipher is None:
        cipher = field_cipher(app_settings(request))
        setattr(request.app.state, CIPHER_STATE, cipher)
    return cipher


def webhook_dispatcher(request: Request) -> Dispatcher:
    """The app's Celery client for `providers.deliver`, made on first use."""
    dispatcher: Dispatcher | None = getattr(request.app.state, DISPATCHER_STATE, None)
    if dispatcher is None:
        from backend.worker import create_celery_app  # the worker module is heavy; load late

        dispatcher = CeleryDispatcher(create_celery_app(app_settings(request)))
        setattr(request.app.state, DISPATCHER_STATE, dispatcher)
    return dispatcher


def _queueing_session(request: Request, session: SessionDep) -> Iterator[Session]:
    session.info[SESSION_DISPATCHER] = webhook_dispatcher(request)
    yield session


Cipher = Annotated[FieldCipher, Depends(provider_cipher)]
WebhookQueueingSession = Annotated[Session, Depends(_queueing_session, scope="function")]
