"""`credagg audit verify` on a real database: intact -> 0; each kind of tampering -> 1, at its seq.

The log under test: 8 entries, the head receipted at seq 6 (as `audit.checkpoint` does), and two
entries after it. Tampering is done the way an intruder with database access would: SQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from backend.audit.chain import chain_entries
from backend.audit.service import verify_log
from backend.audit.tasks import run_checkpoint
from backend.cli import app as cli
from backend.config import Settings, get_settings
from backend.db import SessionFactory, session_scope
from backend.receipts.models import Receipt, ReceiptKind
from tests.audit.conftest import create_entries, entries

runner = CliRunner()
CHECKPOINT_SEQ = 6
ENTRIES = 8


@pytest.fixture
def log(audit_settings: Settings, session_factory: SessionFactory) -> SessionFactory:
    create_entries(session_factory, CHECKPOINT_SEQ)
    with session_scope(session_factory) as session:
        assert run_checkpoint(session, audit_settings)["seq"] == CHECKPOINT_SEQ
    create_entries(session_factory, ENTRIES - CHECKPOINT_SEQ)
    return session_factory


@pytest.fixture
def cli_env(audit_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`credagg` reads its settings from the environment: point it at the test database."""
    monkeypatch.setenv("DATABASE_URL", audit_settings.effective_database_url)
    monkeypatch.setenv("CREDAGG_ENVIRONMENT", "test")
    monkeypatch.setenv("CREDAGG_DATA_DIR", str(audit_settings.data_dir))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def verify_json() -> tuple[int, dict[str, Any]]:
    result = runner.invoke(cli, ["audit", "verify", "--json", "--page-size", "3"])
    return result.exit_code, json.loads(result.stdout)


def sql(factory: SessionFactory, *statements: str, **params: Any) -> None:
    with session_scope(factory) as session:
        for statement in statements:
            session.execute(text(statement), params)


def test_an_intact_log_verifies(log: SessionFactory, cli_env: None) -> None:
    code, report = verify_json()
    assert code == 0, report
    assert report["ok"] is True
    assert report["entries"] == ENTRIES
    assert report["checkpoints"] == 1
    assert report["last_checkpoint_seq"] == CHECKPOINT_SEQ
    assert report["problems"] == []
    result = runner.invoke(cli, ["audit", "verify"])
    assert result.exit_code == 0
    assert "audit log intact" in result.stdout


def _edit_field(factory: SessionFactory) -> None:
    sql(factory, "UPDATE audit_entries SET actor = 'auditor:mallory' WHERE seq = 3")


def _delete_middle(factory: SessionFactory) -> None:
    sql(factory, "DELETE FROM audit_entries WHERE seq = 4")


def _swap_seqs(factory: SessionFactory) -> None:
    sql(
        factory,
        "UPDATE audit_entries SET seq = 1000000 WHERE seq = 2",
        "UPDATE audit_entries SET seq = 2 WHERE seq = 5",
        "UPDATE audit_entries SET seq = 5 WHERE seq = 1000000",
    )


def _delete_tail_and_hide_it(factory: SessionFactory) -> None:
    """Delete seqs 5..8 and point the head row at seq 4: only the receipt at 6 remembers."""
    sql(
        factory,
        "DELETE FROM audit_entries WHERE seq >= 5",
        "UPDATE audit_head SET seq = 4, entry_hash = "
        "(SELECT entry_hash FROM audit_entries WHERE seq = 4)",
    )


def _delete_unreceipted_tail(factory: SessionFactory) -> None:
    """Entries after the last receipt, but the head row still says 8."""
    sql(factory, "DELETE FROM audit_entries WHERE seq >= 7")


def _rewrite_history(factory: SessionFactory) -> None:
    """Edit seq 2 and recompute every hash after it (and the head row): a consistent forgery."""
    forged = [
        {
            "at": e.at,
            "actor": "auditor:mallory" if e.seq == 2 else e.actor,
            "action": e.action,
            "resource": e.resource,
            "request_id": e.request_id,
            "status": e.status,
        }
        for e in entries(factory)
    ]
    with session_scope(factory) as session:
        for entry in chain_entries(forged):
            session.execute(
                text(
                    "UPDATE audit_entries SET actor = :actor, prev_hash = :prev, "
                    "entry_hash = :digest WHERE seq = :seq"
                ),
                {
                    "actor": entry.actor,
                    "prev": entry.prev_hash,
                    "digest": entry.entry_hash,
                    "seq": entry.seq,
                },
            )
            last = entry
        session.execute(
            text("UPDATE audit_head SET entry_hash = :digest"), {"digest": last.entry_hash}
        )


def _edit_checkpoint_receipt(factory: SessionFactory) -> None:
    """Move the receipted head to match a forgery: the receipt's commitment no longer fits."""
    with session_scope(factory) as session:
        _point_receipt_at(session, seq=2)


def _point_receipt_at(session: Session, *, seq: int) -> None:
    digest = session.execute(
        text("SELECT entry_hash FROM audit_entries WHERE seq = :seq"), {"seq": seq}
    ).scalar_one()
    session.execute(
        update(Receipt)
        .where(Receipt.kind == ReceiptKind.AUDIT_CHECKPOINT.value)
        .values(payload={"seq": seq, "head": "0x" + bytes(digest).hex()})
    )


TAMPERING: list[tuple[Callable[[SessionFactory], None], set[tuple[int, str]]]] = [
    (_edit_field, {(3, "entry_hash")}),
    (_delete_middle, {(4, "missing")}),
    (_swap_seqs, {(2, "entry_hash"), (2, "prev_hash"), (5, "entry_hash"), (5, "prev_hash")}),
    (_delete_tail_and_hide_it, {(CHECKPOINT_SEQ, "witness_missing")}),
    (_delete_unreceipted_tail, {(ENTRIES, "witness_missing")}),
    (_rewrite_history, {(CHECKPOINT_SEQ, "witness_mismatch")}),
    (_edit_checkpoint_receipt, {(2, "checkpoint_receipt")}),
]


@pytest.mark.parametrize(
    ("tamper", "expected"), TAMPERING, ids=[tamper.__name__[1:] for tamper, _ in TAMPERING]
)
def test_tampering_is_detected_and_named(
    log: SessionFactory,
    cli_env: None,
    tamper: Callable[[SessionFactory], None],
    expected: set[tuple[int, str]],
) -> None:
    tamper(log)
    code, report = verify_json()
    assert code == 1, report
    assert report["ok"] is False
    found = {(problem["seq"], problem["check"]) for problem in report["problems"]}
    assert expected <= found, report["problems"]
    assert report["first_bad_seq"] == min(seq for seq, _ in found)

    text_result = runner.invoke(cli, ["audit", "verify"])
    assert text_result.exit_code == 1
    first_seq, first_check = min(expected)
    assert f"seq {first_seq} {first_check}" in text_result.stdout
    assert "audit log BROKEN" in text_result.stdout


def test_verification_streams_in_pages_of_any_size(log: SessionFactory) -> None:
    for page_size in (1, 2, 3, ENTRIES, ENTRIES + 1, 1000):
        report = verify_log(log, page_size=page_size)
        assert report.ok, (page_size, report.problems)
        assert report.entries == ENTRIES
        assert report.head.seq == ENTRIES


def test_a_database_without_the_audit_tables_exits_2(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.setenv("CREDAGG_ENVIRONMENT", "test")
    monkeypatch.setenv("CREDAGG_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        result = runner.invoke(cli, ["audit", "verify"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "cannot read the audit log" in result.stderr
