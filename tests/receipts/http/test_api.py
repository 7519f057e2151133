"""The receipts API through HTTP on the real app and database: who sees which receipt, and
that what it serves is exactly what the offline tools accept.

Visibility: a wallet sees its own receipts, a provider its own, an auditor all; anyone else gets
the same 404 as for a receipt that does not exist. Checkpoints and consistency proofs are public.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from backend.config import Settings
from backend.db import create_db_engine, create_session_factory, session_scope
from backend.receipts.bundle import (
    parse_bundle,
    parse_checkpoint_file,
    parse_consistency_proof,
)
from backend.receipts.merkle import verify_consistency
from backend.receipts.models import ReceiptKind
from backend.receipts.service import IssuedReceipt, issue_receipts, signer_from_settings
from backend.receipts.signing import verify_checkpoint
from backend.receipts.verifier import verify_bundle
from tests.auth.conftest import bearer, create_key, create_provider, sign_in
from tests.receipts.conftest import create_draft


def issue(config: Settings, *tenants: str) -> list[IssuedReceipt]:
    engine = create_db_engine(config)
    try:
        with session_scope(create_session_factory(engine)) as session:
            return issue_receipts(
                session,
                [create_draft(tenant=t, subject=f"loan:{uuid.uuid4().hex[:8]}") for t in tenants],
                signer=signer_from_settings(config),
            )
    finally:
        engine.dispose()


class Parties:
    """Two wallets, two providers and an auditor, each with a bearer header."""

    def __init__(self, client: TestClient, config: Settings) -> None:
        self.alice, self.bob = Account.create(), Account.create()
        self.alice_h = bearer(sign_in(client, self.alice))
        self.bob_h = bearer(sign_in(client, self.bob))
        self.acme_id, acme_key = create_provider(config)
        self.other_id, other_key = create_provider(config)
        self.acme_h, self.other_h = bearer(acme_key), bearer(other_key)
        self.auditor_h = bearer(create_key(config).token)

    def tenant(self, who: str) -> str:
        if who in ("alice", "bob"):
            return f"wallet:{getattr(self, who).address.lower()}"
        return f"provider:{self.acme_id if who == 'acme' else self.other_id}"


@pytest.fixture
def parties(client: TestClient, settings: Settings) -> Parties:
    return Parties(client, settings)


@pytest.fixture
def issued(parties: Parties, settings: Settings) -> dict[str, IssuedReceipt]:
    receipts = issue(settings, parties.tenant("alice"), parties.tenant("acme"))
    return {"alice": receipts[0], "acme": receipts[1]}


def test_each_receipt_is_visible_to_its_tenant_and_auditors_only(
    client: TestClient, parties: Parties, issued: dict[str, IssuedReceipt]
) -> None:
    allowed = {
        "alice": [parties.alice_h, parties.auditor_h],
        "acme": [parties.acme_h, parties.auditor_h],
    }
    refused = {
        "alice": [parties.bob_h, parties.acme_h, parties.other_h],
        "acme": [parties.alice_h, parties.bob_h, parties.other_h],
    }
    for owner, receipt in issued.items():
        for path in (f"/v1/receipts/{receipt.id}", f"/v1/receipts/{receipt.id}/proof"):
            for headers in allowed[owner]:
                response = client.get(path, headers=headers)
                assert response.status_code == 200, (owner, path, response.text)
            for headers in refused[owner]:
                response = client.get(path, headers=headers)
                assert response.status_code == 404, (owner, path, response.text)
                assert response.json()["error"] == "receipt_not_found"
            assert client.get(path).status_code == 401
    missing = client.get(f"/v1/receipts/{uuid.uuid4()}", headers=parties.auditor_h)
    assert missing.status_code == 404  # the same answer as for someone else's receipt


def test_the_served_receipt_is_the_committed_document(
    client: TestClient, parties: Parties, issued: dict[str, IssuedReceipt], settings: Settings
) -> None:
    receipt = issued["alice"]
    body = client.get(f"/v1/receipts/{receipt.id}", headers=parties.alice_h).json()
    assert body["document"] == receipt.document
    assert body["salt"] == "0x" + receipt.salt.hex()
    assert body["commitment"] == "0x" + receipt.commitment.hex()
    assert body["leaf_index"] == receipt.leaf_index
    assert body["tenant"] == parties.tenant("alice")
    assert body["issuance"]["key_id"] == signer_from_settings(settings).key_id


def test_lists_hold_only_the_callers_receipts(
    client: TestClient, parties: Parties, issued: dict[str, IssuedReceipt]
) -> None:
    def ids(headers: dict[str, str], **params: Any) -> set[str]:
        found: set[str] = set()
        after: int | None = None
        while True:
            query = {"limit": 50, **params} | ({"after": after} if after is not None else {})
            page = client.get("/v1/receipts", headers=headers, params=query)
            assert page.status_code == 200, page.text
            found |= {item["id"] for item in page.json()["items"]}
            after = page.json()["next_after"]
            if after is None:
                return found

    assert ids(parties.alice_h) == {str(issued["alice"].id)}
    assert ids(parties.acme_h) == {str(issued["acme"].id)}
    assert ids(parties.bob_h) == set()
    everything = ids(parties.auditor_h)
    assert {str(r.id) for r in issued.values()} <= everything
    assert ids(parties.alice_h, kind=ReceiptKind.ACCEPTANCE.value) == set()
    bad = client.get("/v1/receipts", headers=parties.alice_h, params={"kind": "nonsense"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "query.kind"


def test_a_bundle_before_anchoring_verifies_offline_and_says_not_anchored(
    client: TestClient, parties: Parties, issued: dict[str, IssuedReceipt], settings: Settings
) -> None:
    response = client.get(f"/v1/receipts/{issued['acme'].id}/proof", headers=parties.acme_h)
    assert response.status_code == 200, response.text
    bundle = parse_bundle(response.text)  # exactly the format the verifier reads
    assert bundle.anchors == ()
    assert bundle.leaf_index == issued["acme"].leaf_index
    pubkey = signer_from_settings(settings).public_key_bytes
    report = verify_bundle(bundle, pubkey=pubkey, offline=True)
    assert [c.name for c in report.checks if c.status == "fail"] == []
    online = verify_bundle(bundle, pubkey=pubkey, rpc_urls=[])
    assert online.exit_code == 2, online.to_json()  # not anchored yet


def test_a_proof_against_a_size_that_does_not_include_the_receipt_is_a_clear_400(
    client: TestClient, parties: Parties, issued: dict[str, IssuedReceipt]
) -> None:
    receipt = issued["alice"]
    checkpoint = client.get("/v1/log/checkpoint").json()
    response = client.get(
        f"/v1/receipts/{receipt.id}/proof",
        headers=parties.alice_h,
        params={"size": checkpoint["size"] + 10},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_tree_size"
    assert response.json()["hint"]
    not_a_uuid = client.get("/v1/receipts/123/proof", headers=parties.alice_h)
    assert not_a_uuid.status_code == 422
    assert not_a_uuid.json()["errors"][0]["field"] == "path.receipt_id"


def test_checkpoints_and_consistency_proofs_are_public_and_verify(
    client: TestClient, parties: Parties, settings: Settings
) -> None:
    issue(settings, parties.tenant("bob"))
    first = client.get("/v1/log/checkpoint")
    assert first.status_code == 200, first.text
    old = parse_checkpoint_file(first.text)
    pubkey = signer_from_settings(settings).public_key_bytes
    assert verify_checkpoint(pubkey, old.checkpoint)

    issue(settings, parties.tenant("bob"), parties.tenant("acme"))
    later = client.get("/v1/log/checkpoint", params={"from": old.checkpoint.size})
    assert later.status_code == 200, later.text
    new = parse_checkpoint_file(later.text)
    assert new.checkpoint.size >= old.checkpoint.size + 2
    assert new.consistency is not None
    assert verify_consistency(
        old.checkpoint.size,
        new.checkpoint.size,
        old.checkpoint.root,
        new.checkpoint.root,
        list(new.consistency.proof),
    )
    proof = client.get(
        "/v1/log/consistency", params={"from": old.checkpoint.size, "to": new.checkpoint.size}
    )
    assert proof.status_code == 200, proof.text
    parsed = parse_consistency_proof(proof.text)
    assert parsed.proof == new.consistency.proof
    same = client.get("/v1/log/checkpoint", params={"size": old.checkpoint.size})
    assert parse_checkpoint_file(same.text).checkpoint == old.checkpoint


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"from": 5, "to": 2}, 400, None),
        ({"from": 1, "to": 10**12}, 400, None),
        ({"from": 0, "to": 2}, 422, "query.from"),
        ({"to": 2}, 422, "query.from"),
        ({"from": "x", "to": 2}, 422, "query.from"),
    ],
)
def test_bad_consistency_requests_say_what_is_wrong(
    client: TestClient, params: dict[str, Any], status: int, field: str | None
) -> None:
    response = client.get("/v1/log/consistency", params=params)
    assert response.status_code == status, response.text
    body = response.json()
    if field is None:
        assert body["error"] == "invalid_tree_size"
        assert "from" in body["detail"] and "to" in body["detail"]
    else:
        assert body["errors"][0]["field"] == field
