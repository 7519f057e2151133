"""The DNS-rebinding guard: never POST a webhook to an address that is not public.

`check_webhook_url` refuses private IP literals when an endpoint is set, but a host *name* can
resolve to anything, and differently later (DNS rebinding: public when checked, 127.0.0.1 when
used). So outside development and test, the delivery engine resolves the host itself at every
attempt, refuses when any address it resolves to is not global (private, loopback, link-local,
multicast, reserved, unspecified, shared), and otherwise connects to the address it checked:
the request goes to that IP literal with the original `Host` header and TLS server name, so a
second, different resolution inside the HTTP client cannot happen.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from backend.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list[tuple[Any, ...]]]


def public_hosts_only(settings: Settings) -> bool:
    """Whether deliveries must go to public addresses (everywhere but development and test)."""
    return settings.environment not in ("development", "test")


def _why_not_public(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for label, flagged in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    ):
        if flagged:
            return label
    return None if address.is_global else "not globally routable"


@dataclass(frozen=True)
class PinnedTarget:
    """Where to connect: the checked address, or why we refuse (`refusal` set)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)
    refusal: str | None = None


def pin_public_address(url: str, *, resolve: Resolver = socket.getaddrinfo) -> PinnedTarget:
    """Resolve `url`'s host; refuse unless every address is public, else pin the first one."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return PinnedTarget(url, refusal=f"could not resolve webhook host {host!r}: {exc}")
    addresses: list[IPAddress] = []
    for info in infos:
        literal = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
        addresses.append(ipaddress.ip_address(literal))
    if not addresses:
        return PinnedTarget(url, refusal=f"webhook host {host!r} resolved to no address")
    for address in addresses:
        reason = _why_not_public(address)
        if reason is not None:
            return PinnedTarget(
                url,
                refusal=(
                    f"refused to connect: webhook host {host!r} resolves to {address} "
                    f"({reason}), not a public address; point the webhook at a public host"
                ),
            )
    chosen = addresses[0]
    literal = f"[{chosen}]" if chosen.version == 6 else str(chosen)
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    pinned = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return PinnedTarget(pinned, headers={"Host": parts.netloc}, extensions=extensions)
