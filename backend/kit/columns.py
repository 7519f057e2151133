"""Column types that behave the same on SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Integer
from sqlalchemy.types import TypeDecorator

#: The largest BIGINT: a larger id names no row, and PostgreSQL refuses to compare one with a
#: BIGINT column (a 500), so route parameters are bounded by it (a 422 instead).
DB_INT_MAX = 2**63 - 1

#: 64-bit ids on PostgreSQL; on SQLite only `INTEGER PRIMARY KEY` is the auto-incrementing rowid.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC `datetime` in Python whatever the database keeps.

    PostgreSQL stores `timestamptz`; SQLite has no time zone type and would hand back naive
    values. Naive datetimes are refused on the way in, so local times never slip in unnoticed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware (UTC) datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]
