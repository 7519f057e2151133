"""Bulk inserts for the ingestion hot path: COPY on PostgreSQL, executemany elsewhere.

A backfill writes tens of thousands of rows per transaction. psycopg's executemany sends one
INSERT per row (pipelined); `COPY ... FROM STDIN` streams them in one statement and is what
makes >= 10,000 logs/s possible. It runs on the session's own connection, so it is part of the
step's transaction like every other write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import FromClause, Table, insert
from sqlalchemy.orm import Session


def bulk_insert(session: Session, table: FromClause, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) into a mapped class's `__table__`."""
    if rows:
        columns = list(rows[0].keys())
        values = itemgetter(*columns) if len(columns) > 1 else (lambda row: (row[columns[0]],))
        insert_tuples(session, table, columns, list(map(values, rows)))


def insert_tuples(
    session: Session, table: FromClause, columns: Sequence[str], rows: Sequence[Sequence[Any]]
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
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)
