"""Bulk inserts for the ingestion hot path: COPY on PostgreSQL, executemany elsewhere.

A backfill writes tens of thousands of rows per transaction. psycopg's executemany sends one
INSERT per row (pipelined); `COPY ... FROM STDIN` streams them in one statement and is what
makes >= 10,000 logs/s possible. It runs on the session's own connection, so it is part of the
step's transaction like every other write.

Callers whose rows carry exactly the column's Python types (int for integers, str for strings,
bytes for binary; the watcher's own tables) ask for `binary=True`: COPY's binary format skips
formatting numbers and hex-escaping bytes on our side and parsing them on the server's (measured
on `watcher_logs`, 100,000 rows: about half the client CPU and a third less time). Text stays
the default because it also accepts an int for a string column, which binary does not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    FromClause,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    insert,
)
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine


def bulk_insert(session: Session, table: FromClause, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) into a mapped class's `__table__`."""
    if rows:
        columns = list(rows[0].keys())
        values = itemgetter(*columns) if len(columns) > 1 else (lambda row: (row[columns[0]],))
        insert_tuples(session, table, columns, list(map(values, rows)))


def insert_tuples(
    session: Session,
    table: FromClause,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    binary: bool = False,
) -> None:
    """Insert `rows` (values in `columns` order): no per-row dict when the caller has tuples.

    (psycopg's C `write_row` formats a row faster than Python can build the COPY text itself;
    measured, so the rows go to it as they are.)
    """
    if not rows:
        return
    if not isinstance(table, Table):
        raise TypeError(f"bulk_insert needs a Table, not {type(table).__name__}")
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    quoted = ", ".join(f'"{name}"' for name in columns)
    raw = connection.connection.driver_connection
    assert raw is not None
    options = " (FORMAT BINARY)" if binary else ""
    statement = f'COPY "{table.name}" ({quoted}) FROM STDIN{options}'
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        if binary:
            copy.set_types([_binary_type(table.c[name].type) for name in columns])
        for row in rows:
            copy.write_row(row)


#: PostgreSQL type of each column type binary COPY supports here (subclasses before bases).
_BINARY_TYPES: tuple[tuple[type[TypeEngine[Any]], str], ...] = (
    (BigInteger, "int8"),
    (SmallInteger, "int2"),
    (Integer, "int4"),
    (Boolean, "bool"),
    (Text, "text"),
    (String, "varchar"),
    (LargeBinary, "bytea"),
)


def _binary_type(column_type: TypeEngine[Any]) -> str:
    for kind, name in _BINARY_TYPES:
        if isinstance(column_type, kind):
            return name
    raise TypeError(f"binary COPY does not handle {column_type!r}; use the text format")
