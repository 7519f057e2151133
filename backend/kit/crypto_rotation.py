"""Re-encrypting field ciphertexts under the active key, in batches, without downtime.

Rotating a data key:
1. add the new key to `CREDAGG_DATA_ENCRYPTION_KEYS` everywhere (still active: the old one), so
   every replica can read what the new key will write;
2. make it active (`CREDAGG_DATA_ENCRYPTION_ACTIVE_KEY`): new writes use it, old rows stay
   readable because their key is still configured;
3. run `credagg keys rotate-data-key`: it walks every registered encrypted column in primary-key
   batches, each batch its own short transaction, and re-encrypts the rows not yet under the
   active key. Only rows still holding the ciphertext it read are updated (compare-and-set), so
   a concurrent write is never overwritten. It is idempotent (rows under the active key are
   skipped in SQL) and resumable (a rerun after a crash picks up the remaining rows);
4. when it reports nothing left, remove the old key.

Domains declare their encrypted columns with `register_encrypted_column` next to their models
(the job imports every `backend.*.models`, so it finds them all).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from sqlalchemy import column, select, table, update
from sqlalchemy.sql.expression import ColumnClause

from backend.db import SessionFactory, session_scope
from backend.kit.crypto import ENVELOPE_VERSION, FieldCipher, FieldContext, FieldEncryptionError


@dataclass(frozen=True)
class EncryptedColumn:
    """A text column holding `backend.kit.crypto` envelopes, keyed by `id_column`."""

    table: str
    column: str
    id_column: str = "id"


_REGISTRY: dict[tuple[str, str], EncryptedColumn] = {}


def register_encrypted_column(table: str, column: str, *, id_column: str = "id") -> EncryptedColumn:
    """Declare a column for key rotation (call at import of the domain's models)."""
    target = EncryptedColumn(table=table, column=column, id_column=id_column)
    _REGISTRY[(table, column)] = target
    return target


def encrypted_columns() -> list[EncryptedColumn]:
    return sorted(_REGISTRY.values(), key=lambda target: (target.table, target.column))


@dataclass
class RotationReport:
    table: str
    column: str
    reencrypted: int = 0
    skipped_concurrent: int = 0  # changed by someone else between read and write
    batches: int = 0
    failures: list[str] = field(default_factory=list)  # rows that could not be decrypted


def reencrypt_column(
    session_factory: SessionFactory,
    cipher: FieldCipher,
    target: EncryptedColumn,
    *,
    batch_size: int = 500,
) -> RotationReport:
    """Re-encrypt every row of `target` not under the active key; see the module docstring."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    row_id: ColumnClause[Any] = column(target.id_column)
    value: ColumnClause[Any] = column(target.column)
    source: Any = table(target.table, row_id, value)
    active_prefix = f"{ENVELOPE_VERSION}.{cipher.active_kid}."
    report = RotationReport(table=target.table, column=target.column)
    last_id: Any = None
    while True:
        with session_scope(session_factory) as session:
            statement = (
                select(row_id, value)
                .select_from(source)
                .where(value.is_not(None), ~value.startswith(active_prefix, autoescape=True))
                .order_by(row_id)
                .limit(batch_size)
            )
            if last_id is not None:
                statement = statement.where(row_id > last_id)
            rows = session.execute(statement).all()
            if not rows:
                return report
            report.batches += 1
            for ident, ciphertext in rows:
                last_id = ident
                context = FieldContext(target.table, target.column, ident)
                try:
                    fresh = cipher.reencrypt(str(ciphertext), context)
                except FieldEncryptionError as exc:
                    report.failures.append(str(exc))
                    continue
                result = session.execute(
                    update(source)
                    .where(row_id == ident, value == ciphertext)
                    .values({target.column: fresh})
                )
                if getattr(result, "rowcount", 0):
                    report.reencrypted += 1
                else:
                    report.skipped_concurrent += 1


def rotate_all(
    session_factory: SessionFactory, cipher: FieldCipher, *, batch_size: int = 500
) -> list[RotationReport]:
    """Re-encrypt every registered column (after importing every domain's models)."""
    from backend.db import import_all_models

    import_all_models()
    return [
        reencrypt_column(session_factory, cipher, target, batch_size=batch_size)
        for target in encrypted_columns()
    ]


keys_app = typer.Typer(help="Data encryption keys.", no_args_is_help=True)


@keys_app.command("rotate-data-key")
def rotate_data_key(
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Rows per transaction.")
    ] = 500,
) -> None:
    """Re-encrypt personal data under CREDAGG_DATA_ENCRYPTION_ACTIVE_KEY (safe to rerun).

    Keep the old key in CREDAGG_DATA_ENCRYPTION_KEYS until this reports no failures.
    """
    from backend.config import get_settings
    from backend.db import create_db_engine, create_session_factory

    settings = get_settings()
    cipher = FieldCipher.from_spec(
        settings.data_encryption_keys.get_secret_value(), settings.data_encryption_active_key
    )
    engine = create_db_engine(settings)
    try:
        reports = rotate_all(create_session_factory(engine), cipher, batch_size=batch_size)
    finally:
        engine.dispose()
    failed = 0
    for report in reports:
        typer.echo(
            f"{report.table}.{report.column}: {report.reencrypted} re-encrypted under "
            f"{cipher.active_kid!r} in {report.batches} batch(es), "
            f"{report.skipped_concurrent} changed concurrently, {len(report.failures)} failed"
        )
        for failure in report.failures:
            typer.echo(f"  failed: {failure}", err=True)
        failed += len(report.failures)
    if failed:
        raise typer.Exit(1)
