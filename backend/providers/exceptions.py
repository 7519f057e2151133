"""The providers domain's errors: one family under CredaggError, each with its HTTP status."""

from __future__ import annotations

from backend.exceptions import Conflict, CredaggError, NotFound, Unprocessable


class ProviderError(CredaggError):
    """Root of the providers domain's errors."""

    code = "provider_error"


class ProviderNotFound(ProviderError, NotFound):
    """The provider does not exist (or is not yours)."""

    code = "provider_not_found"


class RateCardNotFound(ProviderError, NotFound):
    """No rate card has been set yet."""

    code = "rate_card_not_found"


class WebhookNotConfigured(ProviderError, NotFound):
    """No webhook endpoint has been set yet."""

    code = "webhook_not_configured"


class InvalidWebhookUrl(ProviderError, Unprocessable):
    """The webhook URL cannot be used (scheme, host or form)."""

    code = "invalid_webhook_url"


class DeliveryNotFound(ProviderError, NotFound):
    """No webhook delivery with this id is yours."""

    code = "delivery_not_found"


class DeliveryInFlight(ProviderError, Conflict):
    """An attempt of this delivery is running right now."""

    code = "delivery_in_flight"
