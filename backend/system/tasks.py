"""Celery tasks of the system domain."""

from __future__ import annotations

import socket
from typing import Any

from celery import shared_task

from backend.system.service import record_heartbeat
from backend.worker import task_session


@shared_task(name="system.ping", bind=True)
def ping(self: Any, nonce: str) -> dict[str, str]:
    """Prove a full round-trip: broker -> worker -> committed DB row -> result backend.

    Returns the nonce it was given and the worker's hostname; the heartbeat row it commits
    carries the same nonce, so a caller can check that the write really landed.
    """
    hostname = str(self.request.hostname or socket.gethostname())
    with task_session(self.app) as session:
        record_heartbeat(session, nonce=nonce, hostname=hostname, task_id=self.request.id)
    return {"nonce": nonce, "hostname": hostname}
