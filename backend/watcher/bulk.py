"""Bulk inserts for the ingestion hot path: COPY on PostgreSQL, executemany elsewhere.

A backfill writes tens of thousands of rows per transaction. psycopg's executemany sends one
INSERT per row (pipelined); `COPY ... FROM STDIN` streams them in one statement and is what
makes >= 10,000 logs/s possible. It runs on the session's own connection, so it is part of the
step's transaction like every other write.

The COPY text is built here in one pass (`copy_text`) rather than row by row through
`Copy.write_row`, whose per-row dispatch cost more than the server's work in a profile of a
100,000-log backfill. Only the value types the watcher writes have a fast form (None, bool, int,
str, bytes, Decimal); a row with anything else goes through `write_row`, which knows them all.
The text can also be built ahead, off the writing thread (the backfill's prefetch does so).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import FromClause, Table, insert
from sqlalchemy.orm import Session

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value: Any) -> str:
    """One value in COPY's text format; TypeError for a type without a fast form."""
    kind = type(value)
    if kind is str:
        return value.translate(_ESCAPES)  # type: ignore[no-any-return]
    if kind is int or kind is Decimal:
        return str(value)
    if kind is bytes:
        return "\\\\x" + value.hex()  # bytea hex input; the backslash escaped for COPY text
    if value is None:
        return "\\N"
    if kind is bool:
        return "t" if value else "f"
    raise TypeError(f"no COPY text form for {kind.__name__}")


def copy_text(rows: Iterable[Sequence[Any]]) -> str | None:
    """Rows as one COPY text payload, or None if a value needs psycopg's own adaptation."""
    try:
        return "".join("\t".join(map(_text, row)) + "\n" for row in rows)
    except TypeError:
        return None


def bulk_insert(session: Session, table: FromClause, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) into a mapped class's `__table__`."""
    if not rows:
        return
    columns = list(rows[0].keys())
    insert_tuples(session, table, columns, [[row[name] for name in columns] for row in rows])


def insert_tuples(
    session: Session,
    table: FromClause,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    text: str | None = None,
) -> None:
    """Insert `rows` (values in `columns` order); `text` is their `copy_text`, if built ahead."""
    if not rows:
        return
    if not isinstance(table, Table):
        raise TypeError(f"bulk_insert needs a Table, not {type(table).__name__}")
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    if text is None:
        text = copy_text(rows)
    quoted = ", ".join(f'"{name}"' for name in columns)
    raw = connection.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
        if text is not None:
            copy.write(text)
        else:
            for row in rows:
                copy.write_row(row)
