"""Refusing webhook targets on loopback, private, link-local or reserved addresses (SSRF),
unless WEBHOOK_ALLOW_PRIVATE is set."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class RefusedTarget(ValueError):
    """The URL points somewhere webhooks may not go."""


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


def literal_target_refused(url: str) -> bool:
    """True when the URL names a forbidden host without needing DNS (IP literal, localhost)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return _forbidden(ipaddress.ip_address(host))
    except ValueError:
        return False


async def check_target(url: str) -> None:
    """Resolve the URL's host and refuse it if any of its addresses is forbidden."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if literal_target_refused(url):
        raise RefusedTarget(f"{host} is a loopback or private address")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConnectionError(f"cannot resolve {host}: {exc}") from exc
    for info in infos:
        if _forbidden(ipaddress.ip_address(info[4][0])):
            raise RefusedTarget(f"{host} resolves to a private address ({info[4][0]})")
