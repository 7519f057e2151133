"""Concurrent state-changing requests (and checkpoints) keep seq gapless and the chain valid.

Against PostgreSQL (DATABASE_URL) the head-row lock (SELECT ... FOR UPDATE) is what serialises
the appends; on SQLite, BEGIN IMMEDIATE does. The requests run through one real app: its sync
endpoints and dependencies run in the threadpool, each with its own connection.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from backend.audit.service import current_head, verify_log
from backend.audit.tasks import run_checkpoint
from backend.config import Settings
from backend.db import SessionFactory, session_scope
from tests.audit.conftest import entries
from tests.audit.endpoints import PREFIX

THREADS = 8
REQUESTS_PER_THREAD = 12


def test_concurrent_requests_and_checkpoints_keep_one_gapless_valid_chain(
    client: TestClient, audit_settings: Settings, session_factory: SessionFactory
) -> None:
    start = threading.Barrier(THREADS + 1)

    def work(worker: int) -> list[int]:
        start.wait()
        statuses = []
        for number in range(REQUESTS_PER_THREAD):
            key = f"{worker}-{number}-{uuid.uuid4().hex[:8]}"
            kind = (worker + number) % 3
            if kind == 0:
                response = client.post(f"{PREFIX}/widgets", json={"nonce": key})
            elif kind == 1:
                response = client.post(f"{PREFIX}/widgets/{key}/conflict")
            else:
                response = client.patch(f"{PREFIX}/ping")
            statuses.append(response.status_code)
        return statuses

    def checkpoints() -> int:
        start.wait()
        issued = 0
        for _ in range(10):
            with session_scope(session_factory) as session:
                issued += bool(run_checkpoint(session, audit_settings)["issued"])
        return issued

    with ThreadPoolExecutor(THREADS + 1) as pool:
        checkpointing = pool.submit(checkpoints)
        results = list(pool.map(work, range(THREADS)))
        checkpointing.result()

    sent = Counter(status for statuses in results for status in statuses)
    assert set(sent) == {200, 201, 409}
    log = entries(session_factory)
    total = THREADS * REQUESTS_PER_THREAD
    assert [entry.seq for entry in log] == list(range(1, total + 1))
    assert Counter(entry.status for entry in log) == sent
    assert len({entry.request_id for entry in log}) == total  # one entry per request
    with session_scope(session_factory) as session:
        assert current_head(session).seq == total
    report = verify_log(session_factory, page_size=50)
    assert report.ok, report.problems
    assert report.entries == total
