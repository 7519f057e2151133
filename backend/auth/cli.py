"""Operator commands: `credagg providers create`, `credagg auth auditor-key|revoke`.

Secrets are printed once, to stdout, and never again: only their digests are stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from backend.auth.exceptions import AuthError
from backend.auth.key_service import ApiKeyService
from backend.config import Settings, get_settings
from backend.db import create_db_engine, create_session_factory, session_scope
from backend.providers.models import ProviderKind

providers_app = typer.Typer(
    help="Lenders (providers) and their first API key.", no_args_is_help=True
)
auth_app = typer.Typer(help="Auditor keys and key revocation.", no_args_is_help=True)

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")


def register(app: typer.Typer) -> None:
    """Add `providers` and `auth` to the main `credagg` app."""
    app.add_typer(providers_app, name="providers")
    app.add_typer(auth_app, name="auth")


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(1)


@contextmanager
def _unit_of_work(settings: Settings) -> Iterator[Session]:
    engine = create_db_engine(settings)
    try:
        with session_scope(create_session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()


def _run(work: Callable[[Session, ApiKeyService], T]) -> T:
    settings = get_settings()
    try:
        with _unit_of_work(settings) as session:
            return work(session, ApiKeyService(settings))
    except AuthError as exc:
        raise _fail(exc.detail + (f" ({exc.hint})" if exc.hint else "")) from None
    except (OperationalError, ProgrammingError) as exc:
        raise _fail(
            f"the database is not ready ({type(exc).__name__}); run `credagg db upgrade` first"
        ) from None


def _print_key(token: str) -> None:
    console.print("API key (shown once; store it now, it cannot be recovered):")
    console.print(token, soft_wrap=True, highlight=False)


@providers_app.command("create")
def create_provider(
    name: Annotated[str, typer.Option("--name", help="Unique provider name.")],
    kind: Annotated[ProviderKind, typer.Option("--kind", help="defi or traditional.")],
) -> None:
    """Create a provider and print its first API key (all provider scopes) once."""

    def work(session: Session, keys: ApiKeyService) -> tuple[int, str, str]:
        provider = keys.create_provider(session, name=name, kind=kind)
        created = keys.create_provider_key(session, provider.id, name="initial")
        return provider.id, provider.tenant, created.token

    provider_id, tenant, token = _run(work)
    console.print(f"provider {name!r} created: id {provider_id}, tenant {tenant}")
    _print_key(token)


@auth_app.command("auditor-key")
def auditor_key(
    name: Annotated[str, typer.Option("--name", help="Who the auditor is (audit log actor).")],
) -> None:
    """Create an auditor key (reads every tenant's receipts and the audit log) and print it once."""
    token, key_id = _run(
        lambda session, keys: (
            (created := keys.create_auditor_key(session, name=name)).token,
            created.key.id,
        )
    )
    console.print(f"auditor key {key_id} created for auditor:{name}")
    _print_key(token)


@auth_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key's public id.")]) -> None:
    """Revoke any API key by id (it stops working at once)."""
    revoked_at = _run(lambda session, keys: keys.revoke_any_key(session, key_id).revoked_at)
    console.print(f"API key {key_id} revoked at {revoked_at.isoformat() if revoked_at else '?'}")
