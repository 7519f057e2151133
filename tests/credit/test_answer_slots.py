"""A fan-out's answer slots, opened and closed in one transaction each (`SlotBatch`), keep the
rules of one slot per lender: a post before the close is taken, an inline answer refuses later
posts as already answered, anything else still pending is closed, and a slot that already
existed (the same request asked twice) is not the batch's to close."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from backend.config import Settings
from backend.credit.late_answers import (
    AlreadyAnswered,
    DeadlinePassed,
    SlotBatch,
    submit_answer,
)
from backend.credit.models import ProviderAnswer
from backend.db import SessionFactory, create_db_engine, create_session_factory, session_scope
from backend.kit.columns import utcnow
from tests.auth.conftest import create_provider


def _kinds(factory: SessionFactory, request_id: str) -> dict[int, str]:
    with session_scope(factory) as session:
        rows = session.execute(
            select(ProviderAnswer.provider_id, ProviderAnswer.kind).where(
                ProviderAnswer.request_id == request_id
            )
        )
        return {int(pid): kind for pid, kind in rows}


def test_a_batch_opens_every_slot_and_closes_each_by_how_its_lender_answered(
    backend_database_url: str,
) -> None:
    config = Settings(_env_file=None, environment="test", database_url=backend_database_url)
    inline, posting, silent = (create_provider(config)[0] for _ in range(3))
    engine = create_db_engine(config)
    factory = create_session_factory(engine)
    request_id = str(uuid.uuid4())
    try:
        batch = SlotBatch(factory, request_id)
        batch.open([inline, posting, silent], utcnow() + timedelta(seconds=30))
        assert batch.opened == {inline, posting, silent}
        assert _kinds(factory, request_id) == dict.fromkeys((inline, posting, silent), "pending")

        with session_scope(factory) as session:  # a lender that answered 202 posts in time
            submit_answer(session, posting, request_id, kind="decline", body={"reason": "no"})
        batch.answered_inline(inline)
        batch.close()

        assert _kinds(factory, request_id) == {
            inline: "inline",
            posting: "decline",
            silent: "closed",
        }
        with pytest.raises(AlreadyAnswered), session_scope(factory) as session:
            submit_answer(session, inline, request_id, kind="decline", body={"reason": "late"})
        with pytest.raises(DeadlinePassed), session_scope(factory) as session:
            submit_answer(session, silent, request_id, kind="decline", body={"reason": "late"})
    finally:
        engine.dispose()


def test_a_slot_that_already_exists_is_left_to_its_first_opener(
    backend_database_url: str,
) -> None:
    config = Settings(_env_file=None, environment="test", database_url=backend_database_url)
    first, second = (create_provider(config)[0] for _ in range(2))
    engine = create_db_engine(config)
    factory = create_session_factory(engine)
    request_id = str(uuid.uuid4())
    deadline = utcnow() + timedelta(seconds=30)
    try:
        earlier = SlotBatch(factory, request_id)
        earlier.open([first], deadline)
        again = SlotBatch(factory, request_id)
        again.open([first, second], deadline)
        assert again.opened == {second}
        assert again.slot(first) is None
        again.close()
        assert _kinds(factory, request_id) == {first: "pending", second: "closed"}
        earlier.close()
        assert _kinds(factory, request_id) == {first: "closed", second: "closed"}
    finally:
        engine.dispose()
