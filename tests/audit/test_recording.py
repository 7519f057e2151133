"""Every state-changing request gets exactly one entry, through the real app and database."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from backend.audit.chain import GENESIS, verify_chain
from backend.audit.service import current_head
from backend.config import Settings
from backend.db import SessionFactory, session_scope
from backend.observability.context import REQUEST_ID_HEADER
from tests.audit.conftest import build_app, entries, widget_count
from tests.audit.endpoints import PREFIX


def nonce() -> str:
    return uuid.uuid4().hex


def test_a_committed_write_has_its_entry_in_the_same_transaction(
    client: TestClient, session_factory: SessionFactory
) -> None:
    key = nonce()
    response = client.post(
        f"{PREFIX}/widgets", json={"nonce": key}, headers={"X-Test-Actor": "provider:acme"}
    )
    assert response.status_code == 201
    assert widget_count(session_factory, key) == 1
    [entry] = entries(session_factory)
    assert entry.seq == 1
    assert entry.prev_hash == GENESIS
    assert entry.actor == "provider:acme"
    assert entry.action == f"POST {PREFIX}/widgets"
    assert entry.resource == f"{PREFIX}/widgets"
    assert entry.request_id == response.headers[REQUEST_ID_HEADER]
    assert entry.status == 201
    with session_scope(session_factory) as session:
        assert (current_head(session).seq, current_head(session).entry_hash) == (
            1,
            entry.entry_hash,
        )


def test_action_is_the_route_template_and_resource_the_concrete_path(
    client: TestClient, session_factory: SessionFactory
) -> None:
    key = nonce()
    response = client.put(f"{PREFIX}/widgets/{key}", headers={REQUEST_ID_HEADER: "trace-42"})
    assert response.status_code == 202
    [entry] = entries(session_factory)
    assert entry.action == f"PUT {PREFIX}/widgets/{{nonce}}"
    assert entry.resource == f"{PREFIX}/widgets/{key}"
    assert entry.request_id == "trace-42"
    assert entry.status == 202  # set by the endpoint on the injected Response
    assert entry.actor == "anonymous"  # no principal on request.state


def test_safe_methods_produce_no_entry(client: TestClient, session_factory: SessionFactory) -> None:
    assert client.get(f"{PREFIX}/widgets").status_code == 200
    assert client.head("/healthz").status_code in (200, 405)
    assert client.options(f"{PREFIX}/widgets").status_code in (200, 405)
    assert entries(session_factory) == []


def test_a_4xx_has_an_entry_with_its_status_and_leaves_no_other_row(
    client: TestClient, session_factory: SessionFactory
) -> None:
    key = nonce()
    response = client.post(
        f"{PREFIX}/widgets/{key}/conflict", headers={"X-Test-Actor": "wallet:0x" + "1" * 40}
    )
    assert response.status_code == 409
    assert widget_count(session_factory, key) == 0  # the endpoint's write was rolled back
    [entry] = entries(session_factory)
    assert entry.status == 409
    assert entry.action == f"POST {PREFIX}/widgets/{{nonce}}/conflict"
    assert entry.resource == f"{PREFIX}/widgets/{key}/conflict"
    assert entry.actor == "wallet:0x" + "1" * 40
    assert entry.request_id == response.headers[REQUEST_ID_HEADER]


def test_a_500_is_audited_and_rolled_back(
    client: TestClient, session_factory: SessionFactory
) -> None:
    key = nonce()
    response = client.delete(f"{PREFIX}/widgets/{key}/crash")
    assert response.status_code == 500
    assert widget_count(session_factory, key) == 0
    [entry] = entries(session_factory)
    assert (entry.status, entry.action) == (500, f"DELETE {PREFIX}/widgets/{{nonce}}/crash")
    assert entry.request_id == response.headers[REQUEST_ID_HEADER]


def test_requests_that_never_open_a_session_are_audited(
    client: TestClient, session_factory: SessionFactory
) -> None:
    assert client.patch(f"{PREFIX}/ping").status_code == 200
    assert client.post("/no/such/route").status_code == 404
    assert client.post(f"{PREFIX}/widgets", json={"wrong": 1}).status_code == 422
    got = [(e.action, e.resource, e.status) for e in entries(session_factory)]
    assert got == [
        (f"PATCH {PREFIX}/ping", f"{PREFIX}/ping", 200),
        ("POST <unmatched>", "/no/such/route", 404),
        (f"POST {PREFIX}/widgets", f"{PREFIX}/widgets", 422),
    ]


def test_a_mix_of_requests_gives_one_entry_each_in_one_valid_chain(
    client: TestClient, session_factory: SessionFactory
) -> None:
    outcomes = []
    for number in range(12):
        key = nonce()
        if number % 3 == 0:
            outcomes.append(client.post(f"{PREFIX}/widgets", json={"nonce": key}).status_code)
        elif number % 3 == 1:
            outcomes.append(client.post(f"{PREFIX}/widgets/{key}/conflict").status_code)
        else:
            outcomes.append(client.patch(f"{PREFIX}/ping").status_code)
        client.get(f"{PREFIX}/widgets")
    log = entries(session_factory)
    assert [entry.seq for entry in log] == list(range(1, 13))
    assert [entry.status for entry in log] == outcomes
    assert verify_chain(log) == []


def test_a_timed_out_request_is_audited_with_the_504_it_got(
    audit_settings: Settings, session_factory: SessionFactory
) -> None:
    settings = audit_settings.model_copy(update={"request_timeout": 0.2})
    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        response = client.post(f"{PREFIX}/slow", params={"seconds": 30})
    assert response.status_code == 504
    [entry] = entries(session_factory)
    assert (entry.action, entry.status) == (f"POST {PREFIX}/slow", 504)
    assert entry.request_id == response.headers[REQUEST_ID_HEADER]
