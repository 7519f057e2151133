"""POST /v1/auth/siwe with messages made and signed by an independent implementation (npm siwe +
ethers v6): valid ones open a session; every tampered field is rejected by name."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.auth.siwe import format_message, parse_message
from backend.kit.columns import utcnow

from .conftest import Signer, bearer, iso, new_nonce, siwe_fields


def post(client: TestClient, signed: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post("/v1/auth/siwe", json=signed)


def assert_rejected(response, field: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == "siwe_invalid"
    assert body["detail"].startswith(f"{field}: "), body
    assert body["hint"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_nonce_endpoint_describes_the_message_to_sign(client: TestClient) -> None:
    first, second = client.get("/v1/auth/nonce"), client.get("/v1/auth/nonce")
    assert first.status_code == 200
    body = first.json()
    assert body["domain"] == "localhost:8000"
    assert body["uri"] == "http://localhost:8000"
    assert body["chain_ids"] == [31337]
    assert body["version"] == "1"
    assert body["nonce"].isalnum() and len(body["nonce"]) >= 8
    assert body["nonce"] != second.json()["nonce"]
    assert first.headers["Cache-Control"] == "no-store"


def test_messages_from_npm_siwe_sign_in_and_round_trip(
    client: TestClient, sign: Signer, accounts: list[LocalAccount]
) -> None:
    now = utcnow()
    specs = [
        siwe_fields(new_nonce(client)),  # the minimal message with a statement
        siwe_fields(new_nonce(client), statement=None),  # and without one
        siwe_fields(  # every optional field
            new_nonce(client),
            scheme="http",
            uri="http://localhost:8000/login",
            expirationTime=iso(now + timedelta(minutes=10)),
            notBefore=iso(now - timedelta(minutes=1)),
            requestId="req-42",
            resources=[
                "ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/",
                "https://example.com/my-web2-claim.json",
            ],
        ),
    ]
    account = accounts[1]
    for signed in sign([(account, spec) for spec in specs]):
        message = parse_message(signed["message"])
        assert format_message(message) == signed["message"]  # same text as the independent lib
        response = post(client, signed)
        assert response.status_code == 200, response.text
        session = response.json()
        assert session["address"] == account.address
        assert session["signer"] == "eoa"
        assert session["token"].startswith("cs_")

        me = client.get("/v1/auth/me", headers=bearer(session["token"]))
        assert me.status_code == 200, me.text
        assert me.json()["kind"] == "wallet"
        assert me.json()["tenant"] == f"wallet:{account.address.lower()}"
        assert me.json()["actor"] == f"wallet:{account.address.lower()}"


def test_tampered_fields_are_rejected_by_name(
    client: TestClient, sign: Signer, accounts: list[LocalAccount]
) -> None:
    account = accounts[2]
    signed = sign([(account, siwe_fields(new_nonce(client)))])[0]
    original = signed["message"]
    lower = account.address.lower()
    tampering = {
        "domain": original.replace("localhost:8000 wants", "evil.example wants"),
        "uri": original.replace("URI: http://localhost:8000", "URI: http://evil.example"),
        "chain-id": original.replace("Chain ID: 31337", "Chain ID: 1"),
        "address": original.replace(account.address, lower),
        "version": original.replace("Version: 1", "Version: 2"),
        "message": original + "\n",
    }
    for field, message in tampering.items():
        assert message != original
        assert_rejected(post(client, {**signed, "message": message}), field)
    # The untouched message still works: none of the rejections used up its nonce.
    assert post(client, signed).status_code == 200


def test_times_outside_the_validity_window_are_rejected(
    client: TestClient, sign: Signer, accounts: list[LocalAccount]
) -> None:
    now = utcnow()
    expired, not_yet, future_issue = sign(
        [
            (
                accounts[1],
                siwe_fields(
                    new_nonce(client),
                    issuedAt=iso(now - timedelta(hours=2)),
                    expirationTime=iso(now - timedelta(hours=1)),
                ),
            ),
            (accounts[1], siwe_fields(new_nonce(client), notBefore=iso(now + timedelta(hours=1)))),
            (accounts[1], siwe_fields(new_nonce(client), issuedAt=iso(now + timedelta(hours=1)))),
        ]
    )
    assert_rejected(post(client, expired), "expiration-time")
    assert_rejected(post(client, not_yet), "not-before")
    assert_rejected(post(client, future_issue), "issued-at")


def test_clock_skew_tolerance_accepts_a_slightly_fast_wallet(
    client: TestClient, sign: Signer, accounts: list[LocalAccount]
) -> None:
    skewed = sign(
        [
            (
                accounts[1],
                siwe_fields(new_nonce(client), issuedAt=iso(utcnow() + timedelta(seconds=20))),
            )
        ]
    )[0]
    assert post(client, skewed).status_code == 200


def test_nonces_are_single_use_and_must_be_ours(
    client: TestClient, sign: Signer, accounts: list[LocalAccount]
) -> None:
    good, unknown = sign(
        [
            (accounts[1], siwe_fields(new_nonce(client))),
            (accounts[1], siwe_fields("neverIssued1234")),
        ]
    )
    assert post(client, good).status_code == 200
    assert_rejected(post(client, good), "nonce")  # replay
    assert_rejected(post(client, unknown), "nonce")


def test_expired_nonce_is_rejected(
    client: TestClient, sign: Signer, accounts: list[LocalAccount], observer: Session
) -> None:
    nonce = new_nonce(client)
    observer.execute(
        text("UPDATE siwe_nonces SET expires_at = :t WHERE nonce = :n"),
        {"t": utcnow() - timedelta(seconds=1), "n": nonce},
    )
    observer.commit()
    assert_rejected(post(client, sign([(accounts[1], siwe_fields(nonce))])[0]), "nonce")


def test_a_replay_race_lets_exactly_one_sign_in(
    client: TestClient, sign: Signer, accounts: list[LocalAccount]
) -> None:
    signed = sign([(accounts[1], siwe_fields(new_nonce(client)))])[0]
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(pool.map(lambda _: post(client, signed).status_code, range(4)))
    assert statuses == [200, 401, 401, 401]


def test_signatures_by_another_key_or_malformed_are_rejected(
    client: TestClient, sign: Signer, accounts: list[LocalAccount]
) -> None:
    mine = sign([(accounts[1], siwe_fields(new_nonce(client)))])[0]
    theirs = sign([(accounts[2], siwe_fields(new_nonce(client)))])[0]
    # accounts[2]'s signature over a message naming accounts[1]'s address, with a live nonce
    forged_message = theirs["message"].replace(accounts[2].address, accounts[1].address)
    assert_rejected(
        post(client, {"message": forged_message, "signature": theirs["signature"]}), "signature"
    )
    assert_rejected(post(client, {**mine, "signature": "0x1234"}), "signature")
    assert_rejected(post(client, {**mine, "signature": "not hex at all"}), "signature")
    assert post(client, mine).status_code == 200


def test_garbage_is_a_clear_401_not_a_500(client: TestClient) -> None:
    response = post(client, {"message": "hello", "signature": "0x00"})
    assert_rejected(response, "domain")
    response = client.post("/v1/auth/siwe", json={"message": ""})
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"


def test_logout_ends_the_session(
    client: TestClient, sign: Signer, accounts: list[LocalAccount]
) -> None:
    token = post(client, sign([(accounts[1], siwe_fields(new_nonce(client)))])[0]).json()["token"]
    assert client.post("/v1/auth/logout", headers=bearer(token)).status_code == 204
    after = client.get("/v1/auth/me", headers=bearer(token))
    assert after.status_code == 401
    assert after.json()["error"] == "credentials_revoked"


def test_expired_session_is_refused(
    client: TestClient, sign: Signer, accounts: list[LocalAccount], observer: Session
) -> None:
    session = post(client, sign([(accounts[1], siwe_fields(new_nonce(client)))])[0]).json()
    observer.execute(
        text(
            "UPDATE wallet_sessions SET expires_at = :t WHERE address = :a AND revoked_at IS NULL"
        ),
        {"t": utcnow() - timedelta(seconds=1), "a": accounts[1].address.lower()},
    )
    observer.commit()
    response = client.get("/v1/auth/me", headers=bearer(session["token"]))
    assert response.status_code == 401
    assert response.json()["error"] == "credentials_expired"


def test_session_never_outlives_the_signed_expiration_time(
    client: TestClient, sign: Signer, accounts: list[LocalAccount]
) -> None:
    expiry = utcnow() + timedelta(minutes=5)
    signed = sign([(accounts[5], siwe_fields(new_nonce(client), expirationTime=iso(expiry)))])[0]
    session = post(client, signed).json()
    lifetime_cap = expiry + timedelta(seconds=60)  # + the configured clock skew
    assert datetime.fromisoformat(session["expires_at"]) <= lifetime_cap


def test_a_wallet_session_cannot_manage_provider_keys(
    client: TestClient, sign: Signer, accounts: list[LocalAccount]
) -> None:
    token = post(client, sign([(accounts[1], siwe_fields(new_nonce(client)))])[0]).json()["token"]
    response = client.get("/v1/provider/api-keys", headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["error"] == "wrong_principal"
