"""The rules every webhook endpoint follows, whoever subscribes (a provider or a wallet):
which URLs we POST to, what a signing secret looks like, how long a rotated one keeps signing,
and what an event type looks like."""

from __future__ import annotations

import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from backend.config import Settings
from backend.providers.exceptions import InvalidWebhookUrl

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
DEFAULT_ROTATION_GRACE = timedelta(hours=24)
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


@dataclass(frozen=True)
class WebhookView:
    url: str
    created_at: datetime
    updated_at: datetime
    previous_secret_expires_at: datetime | None
    secret: str | None = None  # only when it was just created


def new_signing_secret() -> str:
    """`whsec_` + 256 random bits (base64url)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def check_webhook_url(url: str, settings: Settings) -> str:
    """The URL if we may POST events to it, else `InvalidWebhookUrl` saying what to change.

    HTTPS only outside development and test (plain HTTP would expose events and let anyone on
    the path replay them within the tolerance). In production, hosts that are IP literals in
    private, loopback or link-local ranges are refused too, so a lender cannot point our
    workers at our own network.
    """
    url = url.strip()
    parts = urlsplit(url)
    relaxed = settings.environment in ("development", "test")
    allowed_schemes = ("https", "http") if relaxed else ("https",)
    if parts.scheme not in allowed_schemes:
        raise InvalidWebhookUrl(
            f"webhook URL scheme {parts.scheme or '(none)'!r} is not allowed here",
            hint="Use an https:// URL"
            + (" (http:// is accepted only in development and test)." if not relaxed else "."),
        )
    if not parts.hostname:
        raise InvalidWebhookUrl(
            "the webhook URL has no host", hint="Send an absolute URL like https://example.com/h."
        )
    if parts.username or parts.password:
        raise InvalidWebhookUrl(
            "the webhook URL carries credentials (user:password@)",
            hint="Remove them; verify our requests with the Credagg-Signature header instead.",
        )
    if parts.fragment:
        raise InvalidWebhookUrl(
            "the webhook URL has a #fragment, which is never sent", hint="Remove the fragment."
        )
    try:
        port = parts.port
    except ValueError:
        raise InvalidWebhookUrl(
            "the webhook URL has an invalid port", hint="Use a port between 1 and 65535."
        ) from None
    del port
    if not relaxed:
        host = parts.hostname
        if host == "localhost" or host.endswith(".localhost"):
            raise InvalidWebhookUrl(
                f"webhook host {host!r} is this machine", hint="Use a public host name."
            )
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None and not address.is_global:
            raise InvalidWebhookUrl(
                f"webhook host {host} is not a public address", hint="Use a public host."
            )
    return url
