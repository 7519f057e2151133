"""Tables of the wallets domain: a wallet's webhook endpoint.

A wallet has no row of its own (a SIWE session names it by its lower-case address), so the
endpoint table is keyed by that address. Its deliveries and attempts share the providers'
outbox tables (`webhook_deliveries.wallet`), so one engine delivers, retries and logs both.
"""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import Base
from backend.providers.models import WebhookEndpointColumns


class WalletWebhookEndpoint(WebhookEndpointColumns, Base):
    """Where a wallet receives its events (early-warning alerts), and the signing secrets."""

    __tablename__ = "wallet_webhook_endpoints"

    wallet: Mapped[str] = mapped_column(String(42), primary_key=True)


def _register_encrypted_columns() -> None:
    """Let `credagg keys rotate-data-key` re-encrypt wallets' webhook secrets."""
    from backend.kit.crypto_rotation import register_encrypted_column

    for column in ("secret", "previous_secret"):
        register_encrypted_column(WalletWebhookEndpoint.__tablename__, column, id_column="wallet")


_register_encrypted_columns()
