"""`AuditSlot`: the request's transaction and the middleware never both write, never neither."""

from __future__ import annotations

import threading

import pytest

from backend.audit.exceptions import RequestAbandoned
from backend.audit.recording import AuditSlot


def test_the_middleware_writes_when_nothing_committed() -> None:
    slot = AuditSlot()
    assert slot.close() is True


def test_a_rolled_back_transaction_leaves_the_entry_to_the_middleware() -> None:
    slot = AuditSlot()
    assert slot.begin_commit() is True
    slot.settle(committed=False)
    assert slot.close() is True


def test_a_committed_entry_is_not_written_again() -> None:
    slot = AuditSlot()
    assert slot.begin_commit() is True
    slot.settle(committed=True)
    assert slot.begin_commit() is False  # a second session in the same request
    assert slot.close() is False


def test_a_transaction_after_the_middleware_answered_is_refused() -> None:
    """The timeout answered 504 and audited it; the late endpoint must not commit after all."""
    slot = AuditSlot()
    assert slot.close() is True
    with pytest.raises(RequestAbandoned):
        slot.begin_commit()


@pytest.mark.parametrize("committed", [True, False])
def test_the_middleware_waits_for_a_commit_in_flight(committed: bool) -> None:
    slot = AuditSlot()
    assert slot.begin_commit() is True
    outcome: list[bool] = []
    waiter = threading.Thread(target=lambda: outcome.append(slot.close()))
    waiter.start()
    waiter.join(timeout=0.2)
    assert outcome == []  # still waiting: the commit has not settled
    slot.settle(committed=committed)
    waiter.join(timeout=10)
    assert outcome == [not committed]
