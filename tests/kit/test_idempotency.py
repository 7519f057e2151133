"""Idempotency-Key through the real app: replays do not re-run, reuse is refused, tenants apart.

Every test counts real executions of `tests.kit.endpoints` (in-memory counter) and the rows they
committed (`worker_heartbeats`), on SQLite or PostgreSQL (DATABASE_URL).
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from backend.config import Settings
from backend.db import create_db_engine, create_session_factory, session_scope
from backend.idempotency import service
from backend.idempotency.models import IdempotencyKey
from backend.kit.columns import utcnow
from backend.kit.crypto import FieldCipher
from backend.system.models import WorkerHeartbeat
from tests.kit.conftest import bearer, create_provider
from tests.kit.endpoints import HOSTNAME, PREFIX, Executions

ORDERS = f"{PREFIX}/orders"


def new_key() -> str:
    return f"idem-{uuid.uuid4()}"


def runs(app: FastAPI, nonce: str) -> int:
    state: Executions = app.state.executions
    return state.counts[nonce]


def committed(observer: Session, nonce: str) -> int:
    """Rows committed for `nonce`; the read transaction ends at once (on SQLite every
    transaction takes the write lock)."""
    statement = select(func.count()).where(
        WorkerHeartbeat.nonce == nonce, WorkerHeartbeat.hostname == HOSTNAME
    )
    try:
        return int(observer.execute(statement).scalar_one())
    finally:
        observer.rollback()


def stored_row(observer: Session, key: str) -> IdempotencyKey | None:
    try:
        row = observer.execute(
            select(IdempotencyKey).where(IdempotencyKey.key == key)
        ).scalar_one_or_none()
        if row is not None:
            observer.expunge(row)  # keeps its loaded values through the rollback
        return row
    finally:
        observer.rollback()


def test_same_key_and_body_replays_the_stored_response_without_running_again(
    kit_client: TestClient, kit_app: FastAPI, observer: Session
) -> None:
    nonce, key = uuid.uuid4().hex, new_key()
    first = kit_client.post(
        ORDERS, json={"nonce": nonce, "amount": 5}, headers={"Idempotency-Key": key}
    )
    again = kit_client.post(
        ORDERS, json={"nonce": nonce, "amount": 5}, headers={"Idempotency-Key": key}
    )

    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json() == {"nonce": nonce, "amount": 5, "run": 1}
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["X-Request-ID"] != first.headers["X-Request-ID"]  # a new request
    assert runs(kit_app, nonce) == 1
    assert committed(observer, nonce) == 1


def test_the_same_json_document_spelled_differently_is_the_same_request(
    kit_client: TestClient, kit_app: FastAPI
) -> None:
    nonce, key = uuid.uuid4().hex, new_key()
    headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
    first = kit_client.post(ORDERS, content=f'{{"nonce": "{nonce}", "amount": 5}}', headers=headers)
    again = kit_client.post(ORDERS, content=f'{{"amount":5,"nonce":"{nonce}"}}', headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert runs(kit_app, nonce) == 1


def test_same_key_with_a_different_body_is_422_and_does_not_run(
    kit_client: TestClient, kit_app: FastAPI, observer: Session
) -> None:
    nonce, key = uuid.uuid4().hex, new_key()
    first = kit_client.post(
        ORDERS, json={"nonce": nonce, "amount": 5}, headers={"Idempotency-Key": key}
    )
    changed = kit_client.post(
        ORDERS, json={"nonce": nonce, "amount": 6}, headers={"Idempotency-Key": key}
    )
    other_path = kit_client.post(
        f"{PREFIX}/refuse", json={"nonce": nonce, "amount": 5}, headers={"Idempotency-Key": key}
    )
    assert first.status_code == 201
    for refused in (changed, other_path):
        assert refused.status_code == 422, refused.text
        body = refused.json()
        assert body["error"] == "idempotency_key_reused"
        assert key in body["detail"] and "different" in body["detail"]
        assert "new Idempotency-Key" in body["hint"]
    assert runs(kit_app, nonce) == 1
    assert committed(observer, nonce) == 1


def test_without_the_header_every_post_runs(kit_client: TestClient, kit_app: FastAPI) -> None:
    nonce = uuid.uuid4().hex
    for _ in range(2):
        assert kit_client.post(ORDERS, json={"nonce": nonce, "amount": 1}).status_code == 201
    assert runs(kit_app, nonce) == 2


def test_keys_are_scoped_per_caller(
    kit_client: TestClient, kit_app: FastAPI, settings: Settings
) -> None:
    """Two providers (and an anonymous caller) using one key each run their own request and
    never see another's response."""
    nonce, key = uuid.uuid4().hex, new_key()
    payload = {"nonce": nonce, "amount": 7}
    _, token_a = create_provider(settings)
    _, token_b = create_provider(settings)
    answers = [
        kit_client.post(ORDERS, json=payload, headers={"Idempotency-Key": key, **auth})
        for auth in (bearer(token_a), bearer(token_b), {})
    ]
    assert [answer.status_code for answer in answers] == [201, 201, 201]
    assert [answer.json()["run"] for answer in answers] == [1, 2, 3]
    assert not any("Idempotent-Replayed" in answer.headers for answer in answers)
    replay_b = kit_client.post(
        ORDERS, json=payload, headers={"Idempotency-Key": key, **bearer(token_b)}
    )
    assert replay_b.headers["Idempotent-Replayed"] == "true"
    assert replay_b.json()["run"] == 2
    assert runs(kit_app, nonce) == 3


def test_an_invalid_credential_is_scoped_by_ip_and_still_gets_its_401(
    kit_client: TestClient,
) -> None:
    response = kit_client.post(
        "/v1/auth/logout",
        headers={"Idempotency-Key": new_key(), "Authorization": "Bearer cs_not-a-session"},
    )
    assert response.status_code == 401, response.text


def test_server_errors_are_not_stored_so_the_client_can_retry(
    kit_app: FastAPI, observer: Session
) -> None:
    nonce, key = uuid.uuid4().hex, new_key()
    with TestClient(kit_app, raise_server_exceptions=False) as api:
        for _ in range(2):
            response = api.post(
                f"{PREFIX}/crash",
                json={"nonce": nonce, "amount": 1},
                headers={"Idempotency-Key": key},
            )
            assert response.status_code == 500
            assert "Idempotent-Replayed" not in response.headers
    assert runs(kit_app, nonce) == 2
    assert stored_row(observer, key) is None


def test_client_errors_are_stored_and_replayed(kit_client: TestClient, kit_app: FastAPI) -> None:
    nonce, key = uuid.uuid4().hex, new_key()
    answers = [
        kit_client.post(
            f"{PREFIX}/refuse", json={"nonce": nonce, "amount": 1}, headers={"Idempotency-Key": key}
        )
        for _ in range(2)
    ]
    assert [answer.status_code for answer in answers] == [409, 409]
    assert answers[1].headers["Idempotent-Replayed"] == "true"
    assert (
        answers[1].json()["detail"]
        == answers[0].json()["detail"]
        == f"order {nonce} refused (run 1)"
    )
    assert runs(kit_app, nonce) == 1


def test_a_duplicate_while_the_first_is_in_flight_gets_409_then_the_replay(
    kit_client: TestClient, kit_app: FastAPI, observer: Session
) -> None:
    state: Executions = kit_app.state.executions
    nonce, key = uuid.uuid4().hex, new_key()
    payload = {"nonce": nonce, "amount": 3, "hold": True}
    headers = {"Idempotency-Key": key}
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(kit_client.post, ORDERS, json=payload, headers=headers)
        assert state.entered.wait(timeout=30)
        duplicate = kit_client.post(ORDERS, json=payload, headers=headers)
        state.release.set()
        original = first.result(timeout=30)
    assert duplicate.status_code == 409, duplicate.text
    assert duplicate.json()["error"] == "idempotency_in_progress"
    assert int(duplicate.headers["Retry-After"]) >= 1
    assert original.status_code == 201
    replay = kit_client.post(ORDERS, json=payload, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == original.json()
    assert runs(kit_app, nonce) == 1
    assert committed(observer, nonce) == 1


def test_concurrent_duplicates_execute_once(
    kit_client: TestClient, kit_app: FastAPI, observer: Session
) -> None:
    threads = 8
    start = threading.Barrier(threads)
    nonce, key = uuid.uuid4().hex, new_key()
    payload = {"nonce": nonce, "amount": 9}

    def send(_: int) -> tuple[int, str | None]:
        start.wait()
        response = kit_client.post(ORDERS, json=payload, headers={"Idempotency-Key": key})
        return response.status_code, response.headers.get("Idempotent-Replayed")

    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(send, range(threads)))
    statuses = Counter(status for status, _ in outcomes)
    assert set(statuses) <= {201, 409}, outcomes
    assert sum(1 for status, replayed in outcomes if status == 201 and replayed is None) == 1
    assert runs(kit_app, nonce) == 1
    assert committed(observer, nonce) == 1
    final = kit_client.post(ORDERS, json=payload, headers={"Idempotency-Key": key})
    assert final.status_code == 201 and final.headers["Idempotent-Replayed"] == "true"


def test_an_expired_key_can_be_used_again(
    kit_client: TestClient, kit_app: FastAPI, settings: Settings
) -> None:
    nonce, key = uuid.uuid4().hex, new_key()
    kit_client.post(ORDERS, json={"nonce": nonce, "amount": 1}, headers={"Idempotency-Key": key})
    engine = create_db_engine(settings)
    try:
        with session_scope(create_session_factory(engine)) as session:
            session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.key == key)
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
    finally:
        engine.dispose()
    fresh = kit_client.post(
        ORDERS, json={"nonce": nonce, "amount": 2}, headers={"Idempotency-Key": key}
    )
    assert fresh.status_code == 201 and "Idempotent-Replayed" not in fresh.headers
    assert runs(kit_app, nonce) == 2


def test_a_claim_whose_holder_died_is_taken_over_after_its_lease(
    kit_client: TestClient, kit_app: FastAPI, settings: Settings
) -> None:
    nonce, key = uuid.uuid4().hex, new_key()
    body = f'{{"nonce":"{nonce}","amount":4}}'.encode()
    cipher = FieldCipher.from_spec(
        settings.data_encryption_keys.get_secret_value(), settings.data_encryption_active_key
    )
    engine = create_db_engine(settings)
    try:
        with session_scope(create_session_factory(engine)) as session:
            held = service.claim(
                session,
                cipher,
                scope="ip:testclient",
                key=key,
                fingerprint=service.fingerprint("POST", ORDERS, b"", body, "application/json"),
                now=utcnow() - timedelta(minutes=5),
                lease=timedelta(seconds=30),
                ttl=timedelta(days=1),
            )
        assert isinstance(held, service.Claim)
    finally:
        engine.dispose()
    headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
    response = kit_client.post(ORDERS, content=body, headers=headers)
    assert response.status_code == 201, response.text
    assert "Idempotent-Replayed" not in response.headers
    assert runs(kit_app, nonce) == 1


def test_stored_responses_are_encrypted_at_rest(kit_client: TestClient, observer: Session) -> None:
    nonce, key = uuid.uuid4().hex, new_key()
    kit_client.post(ORDERS, json={"nonce": nonce, "amount": 1}, headers={"Idempotency-Key": key})
    row = stored_row(observer, key)
    assert row is not None and row.response_body is not None
    assert row.response_body.startswith("v1.dev.")
    assert nonce not in row.response_body
    assert row.scope == "ip:testclient" and row.state == "completed"


def test_malformed_keys_are_refused_with_the_rule(kit_client: TestClient) -> None:
    for bad in (b"x" * 256, b"   ", b"caf\xe9", b"tab\tkey"):
        response = kit_client.post(
            ORDERS, json={"nonce": "n", "amount": 1}, headers={"Idempotency-Key": bad}
        )
        assert response.status_code == 400, bad
        body = response.json()
        assert body["error"] == "invalid_idempotency_key"
        assert "1-255 printable ASCII" in body["detail"] or "blank" in body["detail"]


@hypothesis_settings(max_examples=100, deadline=None)
@given(
    document=st.dictionaries(
        st.text(max_size=8),
        st.one_of(st.integers(), st.text(max_size=8), st.booleans(), st.none()),
        max_size=6,
    ),
    indent=st.sampled_from([None, 1, 4]),
)
def test_fingerprint_ignores_key_order_and_whitespace(
    document: dict[str, object], indent: int | None
) -> None:
    import json

    compact = json.dumps(document).encode()
    spaced = json.dumps(dict(reversed(list(document.items()))), indent=indent).encode()
    assert service.fingerprint(
        "POST", "/x", b"", compact, "application/json"
    ) == service.fingerprint("POST", "/x", b"", spaced, "application/json")
    assert service.fingerprint(
        "POST", "/x", b"", compact, "application/json"
    ) != service.fingerprint("POST", "/y", b"", compact, "application/json")


def test_purge_deletes_only_expired_keys(
    kit_client: TestClient, settings: Settings, observer: Session
) -> None:
    expired, live = new_key(), new_key()
    for key in (expired, live):
        kit_client.post(
            ORDERS, json={"nonce": uuid.uuid4().hex, "amount": 1}, headers={"Idempotency-Key": key}
        )
    engine = create_db_engine(settings)
    try:
        factory = create_session_factory(engine)
        with session_scope(factory) as session:
            session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.key == expired)
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        with session_scope(factory) as session:
            deleted = service.purge_expired(session, now=utcnow(), limit=10_000)
    finally:
        engine.dispose()
    assert deleted >= 1
    assert stored_row(observer, expired) is None
    assert stored_row(observer, live) is not None


def test_a_5xx_after_the_changes_committed_is_never_run_again(
    kit_app: FastAPI, observer: Session
) -> None:
    """The request's transaction marks the claim in the same commit as its effects, so a lost
    answer leads to `idempotency_outcome_unknown`, not a second execution."""
    nonce, key = uuid.uuid4().hex, new_key()
    payload = {"nonce": nonce, "amount": 8}
    headers = {"Idempotency-Key": key}
    with TestClient(kit_app, raise_server_exceptions=False) as api:
        first = api.post(f"{PREFIX}/orders-answer-badly", json=payload, headers=headers)
        retry = api.post(f"{PREFIX}/orders-answer-badly", json=payload, headers=headers)
    assert first.status_code == 500
    assert committed(observer, nonce) == 1
    assert retry.status_code == 409, retry.text
    assert retry.json()["error"] == "idempotency_outcome_unknown"
    assert "will not be run again" in retry.json()["detail"]
    assert runs(kit_app, nonce) == 1
    row = stored_row(observer, key)
    assert row is not None and row.effects_committed_at is not None


def test_a_dead_holder_that_committed_is_not_taken_over(
    kit_client: TestClient, kit_app: FastAPI, settings: Settings
) -> None:
    nonce, key = uuid.uuid4().hex, new_key()
    body = f'{{"nonce":"{nonce}","amount":4}}'.encode()
    engine = create_db_engine(settings)
    try:
        with session_scope(create_session_factory(engine)) as session:
            held = service.claim(
                session,
                FieldCipher.from_spec(
                    settings.data_encryption_keys.get_secret_value(),
                    settings.data_encryption_active_key,
                ),
                scope="ip:testclient",
                key=key,
                fingerprint=service.fingerprint("POST", ORDERS, b"", body, "application/json"),
                now=utcnow() - timedelta(minutes=5),
                lease=timedelta(seconds=30),
                ttl=timedelta(days=1),
            )
            assert isinstance(held, service.Claim)
            session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.id == held.row_id)
                .values(effects_committed_at=utcnow() - timedelta(minutes=4))
            )
    finally:
        engine.dispose()
    response = kit_client.post(
        ORDERS, content=body, headers={"Idempotency-Key": key, "Content-Type": "application/json"}
    )
    assert response.status_code == 409
    assert response.json()["error"] == "idempotency_outcome_unknown"
    assert runs(kit_app, nonce) == 0
