"""`credagg receipts public-key`: what an operator publishes so auditors can check receipts.

An auditor verifies every issuance and checkpoint signature against the log's Ed25519 public
key, and must get that key from somewhere other than the service being audited (the website,
the contract deployment notes, a signed release). This prints it from the configured signing
key, in the two forms `credagg verify --pubkey` accepts, without ever printing the seed.
"""

from __future__ import annotations

from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from backend.config import get_settings
from backend.receipts.service import signer_from_settings

app = typer.Typer(help="The receipt log's signing identity.", no_args_is_help=True)


@app.command("public-key")
def public_key(
    pem: Annotated[
        bool, typer.Option("--pem", help="Print a PEM SubjectPublicKeyInfo instead of hex.")
    ] = False,
) -> None:
    """Print the log's Ed25519 public key (hex, or PEM) and its key id on stderr."""
    signer = signer_from_settings(get_settings())
    if pem:
        key = Ed25519PublicKey.from_public_bytes(signer.public_key_bytes)
        typer.echo(
            key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode(), nl=False
        )
    else:
        typer.echo(signer.public_key_bytes.hex())
    typer.echo(f"key id {signer.key_id}", err=True)
