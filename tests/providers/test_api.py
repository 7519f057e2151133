"""The provider API through HTTP: profile, rate card, webhook config, and isolation."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.auth.scopes import REQUESTS_READ
from backend.config import Settings
from backend.db import session_scope
from backend.providers.exceptions import InvalidWebhookUrl
from backend.providers.models import ProviderProfile, WebhookEndpoint
from backend.providers.service import check_webhook_url, enqueue_event

from .conftest import bearer, create_key, create_provider
from .test_rate_cards import valid_card


@pytest.fixture
def lender(settings: Settings) -> tuple[int, dict[str, str]]:
    provider_id, key = create_provider(settings)
    return provider_id, bearer(key)


def test_profile_round_trip_with_contact_encrypted_at_rest(
    client: TestClient, lender: tuple[int, dict[str, str]], session_factory: Any
) -> None:
    provider_id, auth = lender
    empty = client.get("/v1/provider/profile", headers=auth)
    assert empty.status_code == 200, empty.text
    assert empty.json()["contact_email"] is None
    changed = client.patch(
        "/v1/provider/profile",
        headers=auth,
        json={
            "display_name": "Acme Lending",
            "contact_email": "ops@acme.example",
            "contact_phone": "+442071234567",
        },
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["contact_email"] == "ops@acme.example"
    with session_scope(session_factory) as observer:
        row = observer.execute(
            select(ProviderProfile).where(ProviderProfile.provider_id == provider_id)
        ).scalar_one()
    assert row.contact_email is not None and row.contact_email.startswith("v1.")
    assert "acme" not in row.contact_email and "2071234567" not in (row.contact_phone or "")
    cleared = client.patch("/v1/provider/profile", headers=auth, json={"contact_phone": None})
    assert cleared.json()["contact_phone"] is None
    assert cleared.json()["display_name"] == "Acme Lending"  # absent fields are kept


def test_profile_validation_names_the_field(
    client: TestClient, lender: tuple[int, dict[str, str]]
) -> None:
    _, auth = lender
    response = client.patch("/v1/provider/profile", headers=auth, json={"contact_phone": "0207"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.contact_phone"


def test_rate_card_put_get_versions(client: TestClient, lender: tuple[int, dict[str, str]]) -> None:
    _, auth = lender
    missing = client.get("/v1/provider/rate-card", headers=auth)
    assert missing.status_code == 404
    assert missing.json()["error"] == "rate_card_not_found"
    first = client.put("/v1/provider/rate-card", headers=auth, json=valid_card())
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 1
    second = client.put("/v1/provider/rate-card", headers=auth, json=valid_card())
    assert second.json()["version"] == 2
    got = client.get("/v1/provider/rate-card", headers=auth).json()
    assert got["version"] == 2
    assert got["card"]["apr_bands"][0] == {"min_score": 300, "max_score": 579, "apr": "0.3600"}


def test_rate_card_rule_error_is_a_422_naming_the_field_and_fix(
    client: TestClient, lender: tuple[int, dict[str, str]]
) -> None:
    _, auth = lender
    card: dict[str, Any] = valid_card()
    card["apr_bands"][0]["min_score"] = 590
    response = client.put("/v1/provider/rate-card", headers=auth, json=card)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    problem = body["errors"][0]
    assert problem["field"] == "body.apr_bands"
    assert (
        "fall in no band" in problem["message"]
        and "start band 590-669 at 580" in problem["message"]
    )


def test_webhook_secret_is_shown_once_and_stored_encrypted(
    client: TestClient, lender: tuple[int, dict[str, str]], session_factory: Any
) -> None:
    provider_id, auth = lender
    assert client.get("/v1/provider/webhook", headers=auth).status_code == 404
    created = client.put(
        "/v1/provider/webhook", headers=auth, json={"url": "http://127.0.0.1:9/hook"}
    )
    assert created.status_code == 200, created.text
    secret = created.json()["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    moved = client.put(
        "/v1/provider/webhook", headers=auth, json={"url": "https://hooks.example.com/x"}
    )
    assert moved.json()["secret"] is None
    shown = client.get("/v1/provider/webhook", headers=auth).json()
    assert shown["url"] == "https://hooks.example.com/x" and "secret" not in shown
    with session_scope(session_factory) as observer:
        row = observer.execute(
            select(WebhookEndpoint).where(WebhookEndpoint.provider_id == provider_id)
        ).scalar_one()
    assert row.secret.startswith("v1.") and secret not in row.secret
    rotated = client.post("/v1/provider/webhook/rotate-secret", headers=auth, json={})
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"] not in (None, secret)
    assert rotated.json()["previous_secret_expires_at"] is not None


@pytest.mark.parametrize(
    ("url", "environment", "fragment"),
    [
        ("http://hooks.example.com/x", "production", "scheme"),
        ("ftp://hooks.example.com/x", "test", "scheme"),
        ("https://user:pw@hooks.example.com/x", "test", "credentials"),
        ("https:///x", "test", "no host"),
        ("https://10.0.0.5/x", "production", "not a public address"),
        ("https://localhost/x", "production", "this machine"),
        ("https://hooks.example.com:99999/x", "test", "port"),
    ],
)
def test_webhook_url_rules(settings: Settings, url: str, environment: str, fragment: str) -> None:
    configured = settings.model_copy(update={"environment": environment})
    with pytest.raises(InvalidWebhookUrl, match=fragment):
        check_webhook_url(url, configured)


def test_https_is_accepted_in_production_and_loopback_http_in_test(settings: Settings) -> None:
    production = settings.model_copy(update={"environment": "production"})
    assert check_webhook_url("https://hooks.example.com/x", production)
    assert check_webhook_url("http://127.0.0.1:8080/h", settings)


def test_writes_need_profile_write_scope(
    client: TestClient, settings: Settings, lender: tuple[int, dict[str, str]]
) -> None:
    provider_id, _ = lender
    reader = bearer(create_key(settings, provider_id=provider_id, scopes=[REQUESTS_READ]).token)
    assert client.get("/v1/provider/profile", headers=reader).status_code == 200
    refused = client.put("/v1/provider/rate-card", headers=reader, json=valid_card())
    assert refused.status_code == 403
    assert "profile:write" in refused.json()["detail"]


def test_auditor_keys_are_refused(client: TestClient, settings: Settings) -> None:
    auditor = bearer(create_key(settings).token)
    response = client.get("/v1/provider/profile", headers=auditor)
    assert response.status_code == 403


def test_no_provider_can_see_or_touch_anothers_data(
    client: TestClient, settings: Settings, session_factory: Any
) -> None:
    a_id, a_key = create_provider(settings)
    b_id, b_key = create_provider(settings)
    a, b = bearer(a_key), bearer(b_key)
    client.patch("/v1/provider/profile", headers=a, json={"contact_email": "a@a.example"})
    client.put("/v1/provider/rate-card", headers=a, json=valid_card())
    client.put("/v1/provider/webhook", headers=a, json={"url": "http://127.0.0.1:9/a"})
    with session_scope(session_factory) as session:
        a_delivery = enqueue_event(session, a_id, "test.ping", {"who": "a"})

    # B sees only its own (empty) configuration, never A's.
    assert client.get("/v1/provider/profile", headers=b).json()["contact_email"] is None
    assert client.get("/v1/provider/profile", headers=b).json()["provider_id"] == b_id
    assert client.get("/v1/provider/rate-card", headers=b).status_code == 404
    assert client.get("/v1/provider/webhook", headers=b).status_code == 404
    assert client.post("/v1/provider/webhook/rotate-secret", headers=b).status_code == 404
    assert client.get("/v1/provider/webhook/deliveries", headers=b).json()["items"] == []
    for method, path in [
        ("GET", f"/v1/provider/webhook/deliveries/{a_delivery}"),
        ("POST", f"/v1/provider/webhook/deliveries/{a_delivery}/redeliver"),
    ]:
        response = client.request(method, path, headers=b)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"] == "delivery_not_found"

    # B's writes change only B.
    client.put("/v1/provider/webhook", headers=b, json={"url": "http://127.0.0.1:9/b"})
    client.patch("/v1/provider/profile", headers=b, json={"contact_email": "b@b.example"})
    assert client.get("/v1/provider/webhook", headers=a).json()["url"].endswith("/a")
    assert client.get("/v1/provider/profile", headers=a).json()["contact_email"] == "a@a.example"
    listed = client.get("/v1/provider/webhook/deliveries", headers=a).json()["items"]
    assert [item["id"] for item in listed] == [a_delivery]


def test_deliveries_paginate_newest_first(
    client: TestClient, lender: tuple[int, dict[str, str]], session_factory: Any
) -> None:
    provider_id, auth = lender
    with session_scope(session_factory) as session:
        ids = [enqueue_event(session, provider_id, "test.ping", {"n": n}) for n in range(5)]
    page = client.get("/v1/provider/webhook/deliveries?limit=2", headers=auth).json()
    assert [item["id"] for item in page["items"]] == ids[::-1][:2]
    rest = client.get(
        f"/v1/provider/webhook/deliveries?limit=10&before={page['next_before']}", headers=auth
    ).json()
    assert [item["id"] for item in rest["items"]] == ids[::-1][2:]
    assert rest["next_before"] is None
    detail = client.get(f"/v1/provider/webhook/deliveries/{ids[0]}", headers=auth).json()
    assert detail["payload"] == {"n": 0} and detail["attempts"] == []


def test_openapi_documents_the_provider_api(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/v1/provider/profile",
        "/v1/provider/rate-card",
        "/v1/provider/webhook",
        "/v1/provider/webhook/rotate-secret",
        "/v1/provider/webhook/deliveries",
        "/v1/provider/webhook/deliveries/{delivery_id}/redeliver",
    ):
        assert path in paths, path
    assert "404" in paths["/v1/provider/rate-card"]["get"]["responses"]
