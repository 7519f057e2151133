"""Typed receipt payloads: each kind's schema accepts what an auditor needs and refuses the rest,
naming the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.receipts.canonical import canonical_json
from backend.receipts.kinds import KIND_SCHEMAS, PayloadError, validate_payload
from backend.receipts.models import ReceiptKind

from .conftest import sample_payload

K = ReceiptKind


@pytest.mark.parametrize("kind", list(ReceiptKind))
def test_every_kind_has_a_v1_schema_its_sample_passes_and_canonicalizes(kind: ReceiptKind) -> None:
    assert (kind.value, 1) in KIND_SCHEMAS
    payload = sample_payload(kind, n=3)
    validate_payload(kind.value, 1, payload)
    canonical_json(payload)  # nothing in a valid payload is beyond JCS


@pytest.mark.parametrize("kind", list(ReceiptKind))
def test_unknown_fields_and_floats_are_refused_in_every_kind(kind: ReceiptKind) -> None:
    with pytest.raises(PayloadError) as unknown:
        validate_payload(kind.value, 1, {**sample_payload(kind), "note": "x"})
    assert unknown.value.field == "payload.note"
    first = next(iter(sample_payload(kind)))
    with pytest.raises(PayloadError) as floated:
        validate_payload(kind.value, 1, {**sample_payload(kind), first: 1.5})
    assert floated.value.field == f"payload.{first}"


def _set(payload: dict[str, Any], path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    changed = copy.deepcopy(payload)
    target: Any = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


@pytest.mark.parametrize(
    ("kind", "path", "value", "field"),
    [
        (K.REPAYMENT, ("amount",), 1_002_500, "payload.amount"),
        (K.REPAYMENT, ("amount",), "1e6", "payload.amount"),
        (K.REPAYMENT, ("amount",), "-5", "payload.amount"),
        (K.REPAYMENT, ("amount",), "0100", "payload.amount"),
        (K.REPAYMENT, ("payer",), "0x" + "AB" * 20, "payload.payer"),
        (K.REPAYMENT, ("event", "chain_id"), "31337", "payload.event.chain_id"),
        (K.REPAYMENT, ("event", "block_number"), 2**53, "payload.event.block_number"),
        (K.REPAYMENT, ("debt_asset", "decimals"), True, "payload.debt_asset.decimals"),
        (K.QUOTE_SET, ("quotes", 1, "nominal_apr"), "5%", "payload.quotes[1].nominal_apr"),
        (K.QUOTE_SET, ("quotes", 0, "day_count"), "actual", "payload.quotes[0].day_count"),
        (K.QUOTE_SET, ("quoted_at",), "2025-11-23 12:00", "payload.quoted_at"),
        (K.ACCEPTANCE, ("quote_set_receipt_id",), "not-a-uuid", "payload.quote_set_receipt_id"),
        (K.ACCEPTANCE, ("accepted_at",), "2025-02-30T00:00:00Z", "payload.accepted_at"),
        (K.LIQUIDATION, ("price",), "2.8e3", "payload.price"),
        (K.BILLING_STATEMENT, ("lines", 1, "amount"), "7500001", "payload.lines[1]"),
        (K.AUDIT_CHECKPOINT, ("seq",), -1, "payload.seq"),
        (K.AUDIT_CHECKPOINT, ("head",), "0x" + "ab" * 31, "payload.head"),
    ],
)  # fmt: skip
def test_a_bad_value_is_named(
    kind: ReceiptKind, path: tuple[str | int, ...], value: object, field: str
) -> None:
    with pytest.raises(PayloadError) as refused:
        validate_payload(kind.value, 1, _set(sample_payload(kind), path, value))
    assert refused.value.field == field, str(refused.value)


def test_cross_field_laws() -> None:
    repayment = sample_payload(ReceiptKind.REPAYMENT)
    with pytest.raises(PayloadError, match="principal_paid \\+ interest_paid \\+ fees_paid"):
        validate_payload("repayment", 1, {**repayment, "fees_paid": "501"})
    quote_set = sample_payload(ReceiptKind.QUOTE_SET)
    with pytest.raises(PayloadError, match="ranking"):
        validate_payload("quote_set", 1, {**quote_set, "ranking": quote_set["ranking"][:1]})
    duplicated = {**quote_set, "quotes": [quote_set["quotes"][0]] * 2}
    with pytest.raises(PayloadError, match="unique"):
        validate_payload("quote_set", 1, duplicated)
    statement = sample_payload(ReceiptKind.BILLING_STATEMENT)
    with pytest.raises(PayloadError, match="lines add up"):
        validate_payload("billing_statement", 1, {**statement, "total": "1"})
    with pytest.raises(PayloadError, match="period_end"):
        validate_payload(
            "billing_statement", 1, {**statement, "period_end": statement["period_start"]}
        )
    quote = dict(quote_set["quotes"][0])
    del quote["collateral_amount"]
    with pytest.raises(PayloadError, match="collateral"):
        validate_payload("quote_set", 1, {**quote_set, "quotes": [quote, quote_set["quotes"][1]]})


def test_unknown_versions_and_kinds_are_named() -> None:
    with pytest.raises(PayloadError) as version:
        validate_payload("repayment", 7, sample_payload(ReceiptKind.REPAYMENT))
    assert version.value.field == "schema_version"
    with pytest.raises(PayloadError) as kind:
        validate_payload("gift", 1, {})
    assert kind.value.field == "kind"


@given(st.integers(0, 2**256 - 1))
def test_any_uint256_amount_is_carried_exactly_as_a_string(amount: int) -> None:
    payload = sample_payload(ReceiptKind.REPAYMENT)
    payload.update(amount=str(amount), principal_paid=str(amount), interest_paid="0", fees_paid="0")
    validate_payload("repayment", 1, payload)
    assert f'"amount":"{amount}"'.encode() in canonical_json(payload)
