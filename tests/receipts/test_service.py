"""Issuing receipts into the database log: indices, roots, proofs, checkpoints, atomicity.

Runs on a real database (a SQLite file, or PostgreSQL when DATABASE_URL names one), migrated
fresh for each test.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from backend.db import Base, SessionFactory, import_all_models, session_scope
from backend.receipts.canonical import _slow_canonical_json, canonical_json
from backend.receipts.commitment import commitment, leaf_hash
from backend.receipts.merkle import (
    MemoryNodeStore,
    merkle_root,
    subtree_root,
    verify_consistency,
    verify_inclusion,
)
from backend.receipts.models import ReceiptKind
from backend.receipts.repository import (
    MerkleNodeRepository,
    ReceiptRepository,
)
from backend.receipts.service import (
    InvalidReceipt,
    InvalidTreeSize,
    ReceiptDraft,
    ReceiptNotFound,
    ReceiptNotInTree,
    UnknownCorrectedReceipt,
    append_prepared,
    canonical_document,
    checkpoint,
    consistency_proof_between,
    default_inclusion_delay,
    format_issued_at,
    get_receipt,
    inclusion_proof_for,
    issuance_of,
    issue_receipts,
    log_size,
    prepare_receipts,
    receipt_document,
)
from backend.receipts.signing import (
    ReceiptSigner,
    SignedCheckpoint,
    verify_checkpoint,
    verify_commitment_signature,
)
from chain_adapters.evm.store import chain_metadata

from .conftest import create_draft, sample_payload

NOW = datetime(2025, 11, 23, 12, 0, tzinfo=UTC)


def issue(
    factory: SessionFactory, signer: ReceiptSigner, count: int, *, tenant: str = "provider:acme"
) -> list[uuid.UUID]:
    drafts = [create_draft(subject=f"loan:{i}", tenant=tenant) for i in range(count)]
    with session_scope(factory) as session:
        issued = issue_receipts(session, drafts, signer=signer)
    return [receipt.id for receipt in issued]


def stored_commitments(factory: SessionFactory) -> list[bytes]:
    with session_scope(factory) as session:
        return ReceiptRepository(session).commitments_in_order()


def expected_nodes(commitments: list[bytes]) -> dict[tuple[int, int], bytes]:
    """Every complete aligned subtree of the log, computed from scratch by the core."""
    store = MemoryNodeStore(commitments)
    nodes = {}
    level = 0
    while (1 << level) <= len(commitments):
        width = 1 << level
        for index in range(len(commitments) // width):
            nodes[(level, index)] = subtree_root(store, index * width, (index + 1) * width)
        level += 1
    return {key: nodes[key] if key[0] else leaf_hash(commitments[key[1]]) for key in nodes}


def take_checkpoint(factory: SessionFactory, signer: ReceiptSigner) -> SignedCheckpoint:
    with session_scope(factory) as session:
        return checkpoint(session, signer, NOW)


# ---------------------------------------------------------------------------------- issuing


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    import_all_models()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, [Base.metadata, chain_metadata]) == []  # type: ignore[arg-type]


def test_issued_receipts_are_signed_committed_and_stored_as_hashed(
    session_factory: SessionFactory, signer: ReceiptSigner
) -> None:
    drafts = [
        create_draft(kind=kind, tenant=tenant, n=n)
        for n, (kind, tenant) in enumerate(
            [
                (ReceiptKind.QUOTE_SET, "provider:acme"),
                (ReceiptKind.ACCEPTANCE, "wallet:0x" + "AB" * 20),
                (ReceiptKind.AUDIT_CHECKPOINT, "system"),
                (ReceiptKind.BILLING_STATEMENT, "provider:acme"),
                (ReceiptKind.LIQUIDATION, "wallet:0x" + "cd" * 20),
                (ReceiptKind.REPAYMENT, "provider:acme"),
            ]
        )
    ]
    drafts[3].payload["lines"][0]["description"] = "quotes served — é, 😀"  # type: ignore[index]
    with session_scope(session_factory) as session:
        issued = issue_receipts(
            session, drafts, signer=signer, max_inclusion_delay=timedelta(minutes=5)
        )
    assert [receipt.leaf_index for receipt in issued] == [0, 1, 2, 3, 4, 5]
    assert issued[1].document["tenant"] == "wallet:0x" + "ab" * 20  # one spelling per wallet
    for receipt in issued:
        assert commitment(receipt.document, receipt.salt) == receipt.commitment
        assert verify_commitment_signature(
            signer.public_key_bytes, receipt.commitment, receipt.signature
        )
        assert receipt.signature.key_id == signer.key_id
        signed = receipt.signature
        assert signed.include_by - signed.issued_at == timedelta(minutes=5)
        assert format_issued_at(signed.issued_at) == receipt.document["issued_at"]
    with session_scope(session_factory) as session:  # a fresh read, through the database types
        for receipt in issued:
            row = get_receipt(session, receipt.id)
            assert receipt_document(row) == receipt.document
            assert commitment(receipt_document(row), row.salt) == row.commitment
            assert row.issuance_signature == receipt.signature.signature_hex
            assert issuance_of(row) == receipt.signature  # include_by stored as signed
            assert verify_commitment_signature(
                signer.public_key_bytes, row.commitment, issuance_of(row)
            )
        assert log_size(session) == 6


def test_the_default_promise_is_the_anchoring_interval(
    session_factory: SessionFactory, signer: ReceiptSigner
) -> None:
    with session_scope(session_factory) as session:
        (receipt,) = issue_receipts(session, [create_draft()], signer=signer)
    promised = receipt.signature.include_by - receipt.signature.issued_at
    assert promised == default_inclusion_delay() == timedelta(seconds=600)


def test_the_audit_log_helpers_call_shape_is_accepted(
    session_factory: SessionFactory, signer: ReceiptSigner
) -> None:
    draft = ReceiptDraft(
        kind=ReceiptKind.AUDIT_CHECKPOINT,
        tenant="system",
        subject="audit:42",
        payload={"seq": 42, "head": "0x" + "ab" * 32},
    )
    with session_scope(session_factory) as session:
        (receipt,) = issue_receipts(session, [draft], signer=signer)
    assert receipt.document["payload"] == {"seq": 42, "head": "0x" + "ab" * 32}


def test_concurrent_issuance_from_four_threads_has_no_gaps_or_duplicates(
    session_factory: SessionFactory, signer: ReceiptSigner
) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker(number: int) -> None:
        try:
            barrier.wait()
            for batch in range(15):
                issue(
                    session_factory, signer, 1 + (number + batch) % 5, tenant=f"provider:{number}"
                )
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    total = sum(1 + (n + b) % 5 for n in range(4) for b in range(15))
    with session_scope(session_factory) as session:
        assert ReceiptRepository(session).leaf_indices() == list(range(total))
        assert log_size(session) == total
        commitments = ReceiptRepository(session).commitments_in_order()
        assert MerkleNodeRepository(session).all_hashes() == expected_nodes(commitments)
    assert take_checkpoint(session_factory, signer).root == merkle_root(commitments)


def test_a_receipt_prepared_early_takes_its_index_when_appended(
    session_factory: SessionFactory, signer: ReceiptSigner
) -> None:
    """Preparing (signing) needs no lock and fixes the id; the index is the log's next one
    when the receipt is appended, whatever was issued in between."""
    [early] = prepare_receipts([create_draft(subject="loan:early")], signer=signer)
    issue(session_factory, signer, 3)
    with session_scope(session_factory) as session:
        [appended] = append_prepared(session, [early])
    assert (appended.id, appended.leaf_index) == (early.id, 3)
    with session_scope(session_factory) as session:
        stored = get_receipt(session, early.id)
        assert stored.leaf_index == 3
        assert commitment(receipt_document(stored), stored.salt) == early.commitment
        assert log_size(session) == 4
        proof = inclusion_proof_for(session, early.id)
    assert verify_commitment_signature(
        signer.public_key_bytes, stored.commitment, issuance_of(stored)
    )
    commitments = stored_commitments(session_factory)
    assert verify_inclusion(
        proof.leaf_hash, proof.leaf_index, proof.tree_size, proof.path, merkle_root(commitments)
    )


def test_database_root_equals_the_core_root_at_every_size(
    session_factory: SessionFactory, signer: ReceiptSigner
) -> None:
    for count in (1, 2, 3, 7, 16, 33, 38):
        issue(session_factory, signer, count)
        signed = take_checkpoint(session_factory, signer)
        commitments = stored_commitments(session_factory)
        assert signed.size == len(commitments)
        assert signed.root == merkle_root(commitments)
        assert verify_checkpoint(signer.public_key_bytes, signed)
    assert signed.size == 100


def test_checkpoint_is_one_per_size(session_factory: SessionFactory, signer: ReceiptSigner) -> None:
    issue(session_factory, signer, 3)
    first = take_checkpoint(session_factory, signer)
    with session_scope(session_factory) as session:
        again = checkpoint(session, signer, datetime(2030, 1, 1, tzinfo=UTC))
    assert again == first


# ----------------------------------------------------------------------------------- proofs


def test_inclusion_proofs_verify_for_every_index(
    session_factory: SessionFactory, signer: ReceiptSigner
) -> None:
    ids = issue(session_factory, signer, 37) + issue(session_factory, signer, 63)
    signed = take_checkpoint(session_factory, signer)
    stored_commitments_cache = stored_commitments(session_factory)
    old_root = merkle_root(stored_commitments_cache[:37])
    with session_scope(session_factory) as session:
        for index, receipt_id in enumerate(ids):
            proof = inclusion_proof_for(session, receipt_id)
            assert (proof.leaf_index, proof.tree_size) == (index, 100)
            assert verify_inclusion(proof.leaf_hash, index, 100, proof.path, signed.root)
            other = leaf_hash(stored_commitments_cache[(index + 1) % 100])
            assert not verify_inclusion(other, index, 100, proof.path, signed.root)
        for index, receipt_id in enumerate(ids[:37]):
            proof = inclusion_proof_for(session, receipt_id, 37)
            assert verify_inclusion(proof.leaf_hash, index, 37, proof.path, old_root)


def test_consistency_proofs_between_checkpoints_verify(
    session_factory: SessionFactory, signer: ReceiptSigner
) -> None:
    checkpoints = []
    for count in (1, 1, 5, 9, 16, 31, 64):
        issue(session_factory, signer, count)
        checkpoints.append(take_checkpoint(session_factory, signer))
    with session_scope(session_factory) as session:
        for old in checkpoints:
            for new in checkpoints:
                if old.size > new.size:
                    continue
                proof = consistency_proof_between(session, old.size, new.size)
                assert verify_consistency(old.size, new.size, old.root, new.root, proof.path)


def test_proof_requests_outside_the_log_are_refused(
    session_factory: SessionFactory, signer: ReceiptSigner
) -> None:
    first, second = issue(session_factory, signer, 2)
    with session_scope(session_factory) as session:
        with pytest.raises(ReceiptNotFound) as not_found:
            inclusion_proof_for(session, uuid.uuid4())
        assert not_found.value.status_code == 404
        with pytest.raises(InvalidTreeSize):
            inclusion_proof_for(session, first, 3)
        with pytest.raises(ReceiptNotInTree) as not_in_tree:
            inclusion_proof_for(session, second, 1)
        assert not_in_tree.value.status_code == 409
        with pytest.raises(InvalidTreeSize) as bad_range:
            consistency_proof_between(session, 0, 2)
        assert bad_range.value.status_code == 400
        with pytest.raises(InvalidTreeSize):
            consistency_proof_between(session, 2, 3)


# ------------------------------------------------------------------------------- atomicity


def test_a_rolled_back_issuance_leaves_no_trace(
    session_factory: SessionFactory, signer: ReceiptSigner
) -> None:
    issue(session_factory, signer, 5)
    before = stored_commitments(session_factory)

    with pytest.raises(RuntimeError), session_scope(session_factory) as session:
        issue_receipts(session, [create_draft() for _ in range(11)], signer=signer)
        assert log_size(session) == 16  # written, flushed, not committed
        raise RuntimeError("the caller's unit of work fails after issuing")

    with session_scope(session_factory) as session:
        assert log_size(session) == 5
        assert ReceiptRepository(session).commitments_in_order() == before
        assert MerkleNodeRepository(session).all_hashes() == expected_nodes(before)
    assert issue(session_factory, signer, 1) and log_size_now(session_factory) == 6


def log_size_now(factory: SessionFactory) -> int:
    with session_scope(factory) as session:
        return log_size(session)


def test_correcting_an_unknown_receipt_is_refused(
    session_factory: SessionFactory, signer: ReceiptSigner
) -> None:
    (original,) = issue(session_factory, signer, 1)
    unknown = uuid.uuid4()
    with (
        pytest.raises(UnknownCorrectedReceipt) as refused,
        session_scope(session_factory) as session,
    ):
        issue_receipts(session, [create_draft(), create_draft(corrects_id=unknown)], signer=signer)
    assert refused.value.status_code == 422
    assert str(unknown) in refused.value.detail
    assert log_size_now(session_factory) == 1

    with session_scope(session_factory) as session:
        (correction,) = issue_receipts(session, [create_draft(corrects_id=original)], signer=signer)
    assert correction.document["corrects"] == str(original)
    with session_scope(session_factory) as session:
        assert get_receipt(session, correction.id).corrects_id == original


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"payload": {"rate": float("nan")}}, r"repayment receipt \(schema v1\).*payload"),
        (
            {
                "kind": ReceiptKind.AUDIT_CHECKPOINT,
                "payload": {"seq": 2**60, "head": "0x" + "0" * 64},
            },
            "payload.seq",
        ),
        (
            {"kind": ReceiptKind.AUDIT_CHECKPOINT, "payload": {"seq": 1, "head": "0xAB"}},
            "payload.head",
        ),
        ({"tenant": "wallet:0x1234"}, "tenant"),
        ({"tenant": "admin"}, "tenant"),
        ({"subject": ""}, "subject"),
    ],
)
def test_invalid_drafts_are_refused_before_anything_is_written(
    session_factory: SessionFactory,
    signer: ReceiptSigner,
    overrides: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(InvalidReceipt, match=message), session_scope(session_factory) as session:
        issue_receipts(session, [create_draft(**overrides)], signer=signer)  # type: ignore[arg-type]
    assert log_size_now(session_factory) == 0


def test_one_invalid_payload_refuses_the_whole_batch_with_a_422_naming_the_field(
    session_factory: SessionFactory, signer: ReceiptSigner
) -> None:
    bad = sample_payload(ReceiptKind.REPAYMENT, n=1)
    bad["event"] = {**bad["event"], "tx_hash": "0x" + "AB" * 32}
    drafts = [create_draft(n=0), create_draft(payload=bad), create_draft(n=2)]
    with pytest.raises(InvalidReceipt) as refused, session_scope(session_factory) as session:
        issue_receipts(session, drafts, signer=signer)
    assert refused.value.status_code == 422
    assert "payload.event.tx_hash" in refused.value.detail
    assert "kinds.py" in (refused.value.hint or "")
    assert log_size_now(session_factory) == 0


def test_an_unknown_schema_version_is_refused(
    session_factory: SessionFactory, signer: ReceiptSigner
) -> None:
    draft = replace(create_draft(), schema_version=2)
    with (
        pytest.raises(InvalidReceipt, match="no schema version 2"),
        session_scope(session_factory) as session,
    ):
        issue_receipts(session, [draft], signer=signer)


@given(
    subject=st.text(min_size=1, max_size=40),
    version=st.integers(1, 5),
    corrects=st.none() | st.uuids(),
    kind=st.sampled_from(list(ReceiptKind)),
    n=st.integers(0, 10**6),
    moment=st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
)
def test_the_spliced_envelope_is_exactly_the_jcs_of_the_document(
    subject: str,
    version: int,
    corrects: uuid.UUID | None,
    kind: ReceiptKind,
    n: int,
    moment: datetime,
) -> None:
    payload = sample_payload(kind, n=n)
    document = {
        "v": version,
        "kind": kind.value,
        "tenant": "provider:acme",
        "subject": subject,
        "payload": payload,
        "issued_at": format_issued_at(moment),
        "corrects": str(corrects) if corrects else None,
    }
    spliced = canonical_document(document, canonical_json(payload))
    assert spliced == canonical_json(document) == _slow_canonical_json(document)
