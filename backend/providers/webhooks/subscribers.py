"""Who a webhook is for: a provider (lender) or a wallet (borrower).

The outbox (`webhook_deliveries`), its attempt log and the delivery engine are shared; a
`Subscriber` says which column of a delivery names its owner and which table holds the owner's
endpoint, and how that endpoint's secrets are sealed. Everything else - schedule, signing,
leases, redelivery - does not care which kind it serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import InstrumentedAttribute

from backend.kit.crypto import FieldCipher
from backend.providers.models import WebhookDelivery, WebhookEndpoint, WebhookEndpointColumns
from backend.providers.webhooks.secrets import EndpointSealer
from backend.wallets.models import WalletWebhookEndpoint

SubscriberKind = Literal["provider", "wallet"]


@dataclass(frozen=True)
class Subscriber:
    """One provider (`id` is its numeric id) or one wallet (`id` is its lower-case address)."""

    kind: SubscriberKind
    id: int | str

    @classmethod
    def provider(cls, provider_id: int) -> Subscriber:
        return cls("provider", int(provider_id))

    @classmethod
    def wallet(cls, address: str) -> Subscriber:
        return cls("wallet", address.lower())

    @classmethod
    def of(cls, delivery: WebhookDelivery) -> Subscriber:
        """The subscriber a delivery row belongs to."""
        if delivery.wallet is not None:
            return cls.wallet(delivery.wallet)
        assert delivery.provider_id is not None  # the one_subscriber check constraint
        return cls.provider(delivery.provider_id)

    @property
    def provider_id(self) -> int | None:
        return int(self.id) if self.kind == "provider" else None

    @property
    def wallet_address(self) -> str | None:
        return str(self.id) if self.kind == "wallet" else None

    @property
    def endpoint_model(self) -> type[WebhookEndpoint] | type[WalletWebhookEndpoint]:
        return WalletWebhookEndpoint if self.kind == "wallet" else WebhookEndpoint

    @property
    def endpoint_key(self) -> InstrumentedAttribute[Any]:
        """The endpoint table's key column (its value is `id`)."""
        if self.kind == "wallet":
            return WalletWebhookEndpoint.wallet
        return WebhookEndpoint.provider_id

    def new_endpoint(self, **values: object) -> WebhookEndpointColumns:
        """An endpoint row of this subscriber (its key column set from `id`)."""
        if self.kind == "wallet":
            return WalletWebhookEndpoint(wallet=self.wallet_address, **values)
        return WebhookEndpoint(provider_id=self.provider_id, **values)

    def sealer(self, cipher: FieldCipher) -> EndpointSealer:
        return EndpointSealer(cipher, self.endpoint_model.__tablename__, self.id)
