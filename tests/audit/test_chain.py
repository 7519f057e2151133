"""The pure hash chain: intact chains verify; any edit, swap or deletion is caught at its seq."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.audit.chain import (
    DOMAIN,
    GENESIS,
    Entry,
    Head,
    Witness,
    chain_entries,
    entry_document,
    entry_hash,
    verify_chain,
)
from backend.receipts.canonical import canonical_json

text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=0, max_size=20)
moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
records = st.fixed_dictionaries(
    {
        "at": moments,
        "actor": text,
        "action": text,
        "resource": text,
        "request_id": st.none() | text,
        "status": st.integers(100, 599),
    }
)
chains = st.lists(records, min_size=1, max_size=12).map(chain_entries)


def head_witness(chain: list[Entry]) -> Witness:
    return Witness(chain[-1].seq, chain[-1].entry_hash, "the head row")


def test_hash_is_sha256_of_domain_and_jcs_document() -> None:
    [entry] = chain_entries(
        [
            {
                "at": datetime(2026, 11, 22, 22, 16, 13, 123456, tzinfo=UTC),
                "actor": "wallet:0x" + "ab" * 20,
                "action": "POST /v1/credit-requests",
                "resource": "/v1/credit-requests",
                "request_id": "r-1",
                "status": 201,
            }
        ]
    )
    document = entry_document(entry)
    assert document == {
        "v": 1,
        "seq": 1,
        "at": "2026-11-22T22:16:13.123456Z",
        "actor": "wallet:0x" + "ab" * 20,
        "action": "POST /v1/credit-requests",
        "resource": "/v1/credit-requests",
        "request_id": "r-1",
        "status": 201,
        "prev": "0x" + "00" * 32,
    }
    assert entry.prev_hash == GENESIS
    assert entry.entry_hash == hashlib.sha256(DOMAIN + canonical_json(document)).digest()


@given(chains)
def test_an_intact_chain_verifies(chain: list[Entry]) -> None:
    assert [entry.seq for entry in chain] == list(range(1, len(chain) + 1))
    for before, after in itertools.pairwise(chain):
        assert after.prev_hash == before.entry_hash
    assert verify_chain(chain, [head_witness(chain)]) == []


_FIELDS = [
    "seq",
    "at",
    "actor",
    "action",
    "resource",
    "request_id",
    "status",
    "prev_hash",
    "entry_hash",
]


def _other(name: str, value: Any) -> Any:
    """A different value of the same type for field `name`."""
    if name in ("seq", "status"):
        return value + 1
    if name == "at":
        return value + timedelta(microseconds=1)
    if name in ("prev_hash", "entry_hash"):
        return bytes([value[0] ^ 1]) + value[1:]
    if name == "request_id":
        return "x" if value is None else None
    return value + "x"


@given(chains, st.data())
def test_any_edit_of_any_field_is_caught_at_its_seq(
    chain: list[Entry], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(chain) - 1))
    name = data.draw(st.sampled_from(_FIELDS))
    target = chain[index]
    edited = dataclasses.replace(target, **{name: _other(name, getattr(target, name))})
    tampered = [*chain[:index], edited, *chain[index + 1 :]]
    problems = verify_chain(tampered, [head_witness(chain)])
    assert problems, f"editing {name} of seq {target.seq} went unnoticed"
    assert min(p.seq for p in problems) <= target.seq


@given(chains.filter(lambda c: len(c) >= 2), st.data())
def test_swapping_two_entries_is_caught(chain: list[Entry], data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(chain) - 2))
    j = data.draw(st.integers(i + 1, len(chain) - 1))
    first, second = chain[i], chain[j]
    # As stored rows whose seq values were exchanged (read back in seq order)...
    renumbered = list(chain)
    renumbered[i] = dataclasses.replace(second, seq=first.seq)
    renumbered[j] = dataclasses.replace(first, seq=second.seq)
    problems = verify_chain(renumbered, [head_witness(chain)])
    assert {p.seq for p in problems} >= {first.seq}
    # ...and as a stream in the wrong order.
    reordered = list(chain)
    reordered[i], reordered[j] = second, first
    assert verify_chain(reordered, [head_witness(chain)])


@given(chains, st.data())
def test_deleting_any_entry_is_caught_at_its_seq(chain: list[Entry], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(chain) - 1))
    shortened = chain[:index] + chain[index + 1 :]
    problems = verify_chain(shortened, [head_witness(chain)])
    assert chain[index].seq in {p.seq for p in problems}


@given(chains)
def test_a_rewritten_chain_is_caught_by_an_earlier_witness(chain: list[Entry]) -> None:
    """Recomputing every hash after an edit fools the chain, not the receipted head."""
    witness = head_witness(chain)
    edited = [{**_record(entry), "actor": entry.actor + "!"} for entry in chain]
    rewritten = chain_entries(edited)
    assert verify_chain(rewritten) == []  # the chain alone cannot tell
    [problem] = verify_chain(rewritten, [witness])
    assert (problem.seq, problem.check) == (witness.seq, "witness_mismatch")


def test_problems_name_the_seq_and_the_reason() -> None:
    chain = chain_entries([_plain(n) for n in range(5)])
    edited = dataclasses.replace(chain[2], actor="someone else")
    [problem] = verify_chain([*chain[:2], edited, *chain[3:]])
    assert (problem.seq, problem.check) == (3, "entry_hash")
    assert "edited" in problem.detail

    [missing] = verify_chain([*chain[:1], *chain[2:]])
    assert (missing.seq, missing.check) == (2, "missing")

    [tail] = verify_chain(chain[:3], [Witness(5, chain[4].entry_hash, "receipt r")])
    assert (tail.seq, tail.check) == (5, "witness_missing")
    assert "receipt r" in tail.detail


def test_an_empty_log_with_a_genesis_head_verifies() -> None:
    assert verify_chain([], [Witness(0, GENESIS, "the head row")]) == []
    assert Head.genesis() == Head(0, GENESIS)


@pytest.mark.parametrize("seq", [0, -1, 2**53])
def test_seq_outside_the_json_safe_range_is_refused(seq: int) -> None:
    entry = dataclasses.replace(chain_entries([_plain(0)])[0], seq=seq)
    with pytest.raises(ValueError, match="seq"):
        entry_hash(entry.fields())


def _plain(number: int) -> dict[str, Any]:
    return {
        "at": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=number),
        "actor": "anonymous",
        "action": "POST /v1/things",
        "resource": f"/v1/things/{number}",
        "request_id": f"r{number}",
        "status": 201,
    }


def _record(entry: Entry) -> dict[str, Any]:
    return {
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "resource": entry.resource,
        "request_id": entry.request_id,
        "status": entry.status,
    }
