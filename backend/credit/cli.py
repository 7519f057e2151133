"""Operator commands of the credit domain: `credagg kyc set|show`.

A KYC provider's verification result is recorded by the operator (or the KYC integration calling
the same service function); lenders' rate cards say which tier they require. Addresses are
checked (EIP-55 when mixed case) and stored lowercase.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from eth_utils import is_address, is_checksum_address
from rich.console import Console
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from backend.config import get_settings
from backend.credit.compliance import kyc_tier, set_kyc_tier
from backend.db import create_db_engine, create_session_factory, session_scope

kyc_app = typer.Typer(help="Wallets' KYC tiers (what lenders' rate cards require).")
console = Console()
err_console = Console(stderr=True)

WalletArgument = Annotated[str, typer.Argument(help="The wallet address (0x + 40 hex).")]


def register(app: typer.Typer) -> None:
    app.add_typer(kyc_app, name="kyc")


def _wallet(value: str) -> str:
    if not is_address(value):
        raise _fail(f"{value!r} is not an address: use 0x followed by 40 hex digits")
    if value != value.lower() and not is_checksum_address(value):
        raise _fail(f"{value} has a bad EIP-55 checksum: copy it again from the wallet")
    return value.lower()


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(1)


@contextmanager
def _session() -> Iterator[Session]:
    engine = create_db_engine(get_settings())
    try:
        with session_scope(create_session_factory(engine)) as session:
            yield session
    except (OperationalError, ProgrammingError) as exc:
        raise _fail(
            f"the database is not ready ({type(exc).__name__}); run `credagg db upgrade`"
        ) from None
    finally:
        engine.dispose()


@kyc_app.command("set")
def set_tier(
    wallet: WalletArgument,
    tier: Annotated[int, typer.Argument(min=0, max=3, help="The tier reached, 0 to 3.")],
) -> None:
    """Record the KYC tier a wallet's verification reached."""
    address = _wallet(wallet)
    with _session() as session:
        set_kyc_tier(session, address, tier)
    console.print(f"{address}: KYC tier {tier}")


@kyc_app.command("show")
def show_tier(wallet: WalletArgument) -> None:
    """Print a wallet's KYC tier (0 when never verified)."""
    address = _wallet(wallet)
    with _session() as session:
        tier = kyc_tier(session, address)
    console.print(f"{address}: KYC tier {tier}")
