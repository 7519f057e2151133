"""Provider API keys through the HTTP API: lifecycle, storage, isolation, scopes, expiry."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.auth.deps import CurrentPrincipal, CurrentProvider
from backend.auth.scopes import API_KEYS_MANAGE, PROVIDER_SCOPES, RECEIPTS_READ
from backend.kit.columns import utcnow

from .conftest import bearer, create_key, create_provider

KEYS = "/v1/provider/api-keys"


def test_create_list_rotate_revoke(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    provider_id, first = create_provider(settings)
    auth = bearer(first)

    created = client.post(KEYS, json={"name": "ci", "scopes": [RECEIPTS_READ]}, headers=auth)
    assert created.status_code == 201, created.text
    new = created.json()
    assert new["key"].startswith(f"ck_{new['id']}_")
    assert new["scopes"] == [RECEIPTS_READ]
    assert new["status"] == "active"

    listed = client.get(KEYS, headers=auth)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [item["name"] for item in items] == ["initial", "ci"]
    assert all("key" not in item for item in items)
    assert items[0]["last_used_at"] is not None  # the initial key is the one calling

    rotated = client.post(f"{KEYS}/{new['id']}/rotate", headers=auth)
    assert rotated.status_code == 201, rotated.text
    successor = rotated.json()
    assert successor["id"] != new["id"]
    assert successor["scopes"] == [RECEIPTS_READ]
    old = {i["id"]: i for i in client.get(KEYS, headers=auth).json()["items"]}[new["id"]]
    assert old["status"] == "rotating"
    assert old["replaced_by"] == successor["id"]
    # In its grace period the old key still authenticates, and so does the new one.
    for token in (new["key"], successor["key"]):
        me = client.get("/v1/auth/me", headers=bearer(token))
        assert me.status_code == 200, me.text
        assert me.json()["tenant"] == f"provider:{provider_id}"
    again = client.post(f"{KEYS}/{new['id']}/rotate", headers=auth)
    assert again.status_code == 409
    assert successor["id"] in again.json()["detail"]

    assert client.delete(f"{KEYS}/{successor['id']}", headers=auth).status_code == 204
    assert client.delete(f"{KEYS}/{successor['id']}", headers=auth).status_code == 204
    revoked = client.get("/v1/auth/me", headers=bearer(successor["key"]))
    assert revoked.status_code == 401
    assert revoked.json()["error"] == "credentials_revoked"
    assert revoked.headers["WWW-Authenticate"].startswith("Bearer")


def test_rotation_without_grace_stops_the_old_key_at_once(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(api_key_rotation_grace_seconds=0)
    from backend.app import create_app

    with TestClient(create_app(settings)) as client:
        _, first = create_provider(settings)
        key_id = first.split("_")[1]
        rotated = client.post(f"{KEYS}/{key_id}/rotate", headers=bearer(first))
        assert rotated.status_code == 201, rotated.text
        old = client.get("/v1/auth/me", headers=bearer(first))
        assert old.status_code == 401
        assert old.json()["error"] == "credentials_expired"
        assert rotated.json()["id"] in old.json()["detail"]
        assert client.get("/v1/auth/me", headers=bearer(rotated.json()["key"])).status_code == 200


def test_secrets_are_stored_only_as_digests(
    client: TestClient,
    settings,
    observer: Session,  # type: ignore[no-untyped-def]
) -> None:
    provider_id, first = create_provider(settings)
    made = client.post(KEYS, json={"name": "second"}, headers=bearer(first)).json()["key"]
    secrets = [token.split("_", 2)[2] for token in (first, made)]
    rows = observer.execute(
        text("SELECT * FROM api_keys WHERE provider_id = :p"), {"p": provider_id}
    ).all()
    assert len(rows) == 2
    for row in rows:
        for value in row:
            as_text = value.hex() if isinstance(value, bytes) else str(value)
            raw = value if isinstance(value, bytes) else str(value).encode()
            for secret in secrets:
                assert secret not in as_text
                assert secret.encode() not in raw
                assert bytes.fromhex(secret.encode().hex()) not in raw


def test_providers_cannot_touch_each_others_keys(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    _, key_a = create_provider(settings)
    _, key_b = create_provider(settings)
    b_id = key_b.split("_")[1]
    a_ids = {i["id"] for i in client.get(KEYS, headers=bearer(key_a)).json()["items"]}
    assert b_id not in a_ids
    for method, path in (("POST", f"{KEYS}/{b_id}/rotate"), ("DELETE", f"{KEYS}/{b_id}")):
        response = client.request(method, path, headers=bearer(key_a))
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "api_key_not_found"
    assert client.get("/v1/auth/me", headers=bearer(key_b)).status_code == 200  # untouched
    missing = client.delete(f"{KEYS}/0123456789abcdef", headers=bearer(key_a))
    assert missing.status_code == 404  # same answer as for another provider's key


def test_missing_scope_is_403_and_scopes_cannot_escalate(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    provider_id, first = create_provider(settings)
    reader = create_key(settings, provider_id=provider_id, scopes=[RECEIPTS_READ]).token
    denied = client.get(KEYS, headers=bearer(reader))
    assert denied.status_code == 403
    assert denied.json()["error"] == "missing_scope"
    assert API_KEYS_MANAGE in denied.json()["detail"]

    manager = create_key(settings, provider_id=provider_id, scopes=[API_KEYS_MANAGE]).token
    escalate = client.post(
        KEYS, json={"name": "x", "scopes": [RECEIPTS_READ]}, headers=bearer(manager)
    )
    assert escalate.status_code == 422
    assert escalate.json()["error"] == "invalid_key_request"
    unknown = client.post(KEYS, json={"name": "x", "scopes": ["root"]}, headers=bearer(first))
    assert unknown.status_code == 422
    default = client.post(KEYS, json={"name": "x"}, headers=bearer(manager)).json()
    assert default["scopes"] == [API_KEYS_MANAGE]  # by default, what the grantor holds


def test_expired_keys_are_refused(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    provider_id, first = create_provider(settings)
    made_earlier = utcnow() - timedelta(days=2)
    stale = create_key(
        settings, provider_id=provider_id, created_at=made_earlier, expires_in=timedelta(days=1)
    ).token
    response = client.get("/v1/auth/me", headers=bearer(stale))
    assert response.status_code == 401
    assert response.json()["error"] == "credentials_expired"
    past = client.post(
        KEYS, json={"name": "p", "expires_at": "2000-01-01T00:00:00Z"}, headers=bearer(first)
    )
    assert past.status_code == 422


def test_bad_credentials_are_401_with_a_bearer_challenge(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    _, first = create_provider(settings)
    key_id = first.split("_")[1]
    cases = {
        None: "missing_credentials",
        "Basic dXNlcjpwYXNz": "missing_credentials",
        "Bearer nonsense": "invalid_credentials",
        "Bearer ck_short": "invalid_credentials",
        f"Bearer ck_{key_id}_{'A' * 43}": "invalid_credentials",  # right id, wrong secret
        f"Bearer cs_{'A' * 43}": "invalid_credentials",
    }
    for header, code in cases.items():
        headers = {"Authorization": header} if header else {}
        response = client.get(KEYS, headers=headers)
        assert response.status_code == 401, (header, response.text)
        assert response.json()["error"] == code
        assert response.json()["hint"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_auditor_keys_have_no_tenant_and_no_provider_access(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    auditor = create_key(settings)
    me = client.get("/v1/auth/me", headers=bearer(auditor.token))
    assert me.status_code == 200, me.text
    assert me.json()["kind"] == "auditor"
    assert me.json()["tenant"] is None
    assert me.json()["actor"] == f"auditor:{auditor.key.name}"
    denied = client.get(KEYS, headers=bearer(auditor.token))
    assert denied.status_code == 403
    assert denied.json()["error"] == "wrong_principal"


def test_principal_is_left_on_request_state(make_settings) -> None:  # type: ignore[no-untyped-def]
    """What the audit middleware reads, and what the typed dependencies hand to endpoints."""
    from backend.app import create_app

    settings = make_settings()
    app: FastAPI = create_app(settings)
    seen: dict[str, object] = {}

    @app.get("/_probe")
    def probe(request: Request, principal: CurrentProvider) -> dict[str, str]:
        seen["state"] = request.state.principal
        return {"actor": principal.actor}

    @app.get("/_any")
    def anyone(principal: CurrentPrincipal) -> dict[str, list[str]]:
        return {"scopes": sorted(principal.scopes)}

    provider_id, first = create_provider(settings)
    with TestClient(app) as client:
        assert client.get("/_probe", headers=bearer(first)).json() == {
            "actor": f"provider:{provider_id}"
        }
        assert client.get("/_any", headers=bearer(first)).json()["scopes"] == sorted(
            PROVIDER_SCOPES
        )
    assert getattr(seen["state"], "actor", None) == f"provider:{provider_id}"
