"""Test-only endpoints mounted on a real app: some write, some fail, some never open a session.

They write `worker_heartbeats` rows (a real table with no rules of its own) keyed by a nonce,
so a test can count exactly what a request left behind.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel

from backend.db import SessionDep
from backend.exceptions import Conflict
from backend.system.models import WorkerHeartbeat

PREFIX = "/test-audit"


def set_principal(request: Request, x_test_actor: Annotated[str | None, Header()] = None) -> None:
    """Stands in for the auth layer: it sets `request.state.principal`, which has `.actor`."""
    if x_test_actor is not None:
        request.state.principal = SimpleNamespace(actor=x_test_actor)


router = APIRouter(prefix=PREFIX, dependencies=[Depends(set_principal)])


class Widget(BaseModel):
    nonce: str
    sleep: float = 0.0


@router.post("/widgets", status_code=201)
def create_widget(body: Widget, session: SessionDep) -> dict[str, str]:
    if body.sleep:
        time.sleep(body.sleep)
    session.add(WorkerHeartbeat(nonce=body.nonce, hostname="test-audit"))
    session.flush()
    return {"nonce": body.nonce}


@router.put("/widgets/{nonce}")
def accept_widget(nonce: str, session: SessionDep, response: Response) -> dict[str, str]:
    """Sets its status on the injected Response (202), as some endpoints do."""
    session.add(WorkerHeartbeat(nonce=nonce, hostname="test-audit"))
    response.status_code = 202
    return {"nonce": nonce}


@router.post("/widgets/{nonce}/conflict")
def conflicting_widget(nonce: str, session: SessionDep) -> None:
    """Writes, then refuses: the write must be rolled back, the 409 audited."""
    session.add(WorkerHeartbeat(nonce=nonce, hostname="test-audit"))
    session.flush()
    raise Conflict(f"widget {nonce} conflicts", hint="Use another nonce.")


@router.delete("/widgets/{nonce}/crash")
def crashing_widget(nonce: str, session: SessionDep) -> None:
    """Writes, then hits a bug: a 500, rolled back, audited."""
    session.add(WorkerHeartbeat(nonce=nonce, hostname="test-audit"))
    session.flush()
    raise RuntimeError("a bug in the endpoint")


@router.patch("/ping")
def ping() -> dict[str, bool]:
    """State-changing method, no database session at all."""
    return {"pong": True}


@router.post("/slow")
async def slow(seconds: float) -> dict[str, bool]:
    """Outlives a short `request_timeout`: the client gets a 504."""
    await asyncio.sleep(seconds)
    return {"done": True}


@router.get("/widgets")
def list_widgets(session: SessionDep) -> dict[str, int]:
    """A safe method with a session: no entry."""
    return {"count": session.query(WorkerHeartbeat).count()}
