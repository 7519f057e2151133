"""Test-only endpoints mounted on a real app: they count how often they really ran.

`/orders` writes a `worker_heartbeats` row (a real table with no rules of its own) keyed by the
order's nonce and bumps an in-memory counter, so a test sees both the committed side effect and
the number of executions. `hold` parks the request until the test releases it (in-flight
duplicates); `/crash` and `/refuse` end in a 500 and a 409.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from backend.db import SessionDep
from backend.exceptions import Conflict
from backend.system.models import WorkerHeartbeat

PREFIX = "/test-kit"
HOSTNAME = "test-kit"


@dataclass
class Executions:
    """Shared between the app's threadpool and the test (lives on `app.state.executions`)."""

    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def bump(self, nonce: str) -> int:
        with self.lock:
            self.counts[nonce] += 1
            return self.counts[nonce]


def executions(request: Request) -> Executions:
    found = request.app.state.executions
    assert isinstance(found, Executions)
    return found


router = APIRouter(prefix=PREFIX)


class Order(BaseModel):
    nonce: str
    amount: int
    hold: bool = False


@router.post("/orders", status_code=201)
def create_order(body: Order, request: Request, session: SessionDep) -> dict[str, object]:
    state = executions(request)
    run = state.bump(body.nonce)
    if body.hold:
        state.entered.set()
        assert state.release.wait(timeout=30), "the test never released the held request"
    session.add(WorkerHeartbeat(nonce=body.nonce, hostname=HOSTNAME))
    session.flush()
    return {"nonce": body.nonce, "amount": body.amount, "run": run}


@router.post("/crash")
def crash(body: Order, request: Request) -> None:
    executions(request).bump(body.nonce)
    raise RuntimeError("a bug in the endpoint")


@router.post("/refuse")
def refuse(body: Order, request: Request) -> None:
    run = executions(request).bump(body.nonce)
    raise Conflict(f"order {body.nonce} refused (run {run})", hint="Use another nonce.")


@router.post("/orders-answer-badly")
def create_order_then_fail_to_answer(
    body: Order, request: Request, session: SessionDep
) -> StreamingResponse:
    """Its row commits when this returns (the session dependency is function-scoped), then the
    response breaks while streaming: a 500 *after* the changes are durable."""
    executions(request).bump(body.nonce)
    session.add(WorkerHeartbeat(nonce=body.nonce, hostname=HOSTNAME))

    def broken() -> Iterator[bytes]:
        yield b"{"
        raise RuntimeError("the answer broke after the commit")

    return StreamingResponse(broken(), media_type="application/json")
