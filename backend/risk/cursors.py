"""Keyset cursors of the risk lists: opaque to clients, plain `:`-joined positions to us.

An alert list is ordered by (chain id, block number, log index, loan id, threshold) and a loan
list by (chain id, loan id); `next_after` is the last item's position and `after` resumes
strictly behind it. Numbers are bounded to BIGINT so a crafted cursor is a 422, never a failed
database comparison.
"""

from __future__ import annotations

import re

from backend.kit.columns import DB_INT_MAX
from backend.risk.exceptions import InvalidCursor
from backend.risk.repository import AlertPosition
from backend.risk.service import LoanPosition

_ALERT = re.compile(r"^(\d{1,19}):(\d{1,19}):(\d{1,10}):(\d{1,78}):(\d{1,3}(?:\.\d{1,12})?)$")
_LOAN = re.compile(r"^(\d{1,19}):(\d{1,78})$")


def _bounded(text: str, cursor: str) -> int:
    value = int(text)
    if value > DB_INT_MAX:
        raise _invalid(cursor)
    return value


def _invalid(cursor: str) -> InvalidCursor:
    return InvalidCursor(
        f"{cursor!r} is not a cursor of this list",
        hint="Pass the `next_after` of the previous page unchanged, or omit `after`.",
    )


def alert_cursor(position: AlertPosition) -> str:
    return ":".join(str(part) for part in position)


def parse_alert_cursor(cursor: str | None) -> AlertPosition | None:
    if cursor is None:
        return None
    match = _ALERT.match(cursor)
    if match is None:
        raise _invalid(cursor)
    chain, block, index, loan, threshold = match.groups()
    return (
        _bounded(chain, cursor),
        _bounded(block, cursor),
        _bounded(index, cursor),
        loan,
        threshold,
    )


def loan_cursor(position: LoanPosition) -> str:
    return f"{position[0]}:{position[1]}"


def parse_loan_cursor(cursor: str | None) -> LoanPosition | None:
    if cursor is None:
        return None
    match = _LOAN.match(cursor)
    if match is None:
        raise _invalid(cursor)
    return _bounded(match.group(1), cursor), int(match.group(2))
