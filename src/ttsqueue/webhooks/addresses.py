"""Which addresses webhooks may reach (SSRF): never loopback, private, link-local, reserved,
multicast or unspecified ones, unless WEBHOOK_ALLOW_PRIVATE is set.

The check runs twice: on the URL at submission (an IP literal or `localhost` is refused at
once, with a 422), and on the addresses a name resolves to when the dispatcher connects
(`webhooks.guard`), which then connects to exactly the address it checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# host, port -> the addresses to connect to, in order of preference.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


class RefusedTarget(ValueError):
    """The URL points somewhere webhooks may not go."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one leads to (mapped, 6to4 or Teredo), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def forbidden(address: IPAddress) -> bool:
    """True for anything but a globally routable unicast address: loopback, private,
    shared (CGNAT), link-local, reserved (which includes NAT64's 64:ff9b::/96),
    documentation, multicast, unspecified, and IPv6 forms that carry one of those IPv4
    addresses."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None and forbidden(inner):
            return True
    return not address.is_global or address.is_multicast or address.is_reserved


def literal_target_refused(url: str) -> bool:
    """True when the URL names a forbidden host without needing DNS (IP literal, localhost)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return forbidden(ipaddress.ip_address(host))
    except ValueError:
        return False


def refuse_forbidden(host: str, addresses: Sequence[str]) -> None:
    """Raise RefusedTarget if `host` is localhost or any of its addresses is forbidden.

    One forbidden answer refuses the name: a name that also points inside is not a receiver
    to trust, whichever of its addresses would have been tried first.
    """
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        raise RefusedTarget(f"{host} is a loopback name")
    for text in addresses:
        address = ipaddress.ip_address(text.partition("%")[0])
        if forbidden(address):
            shown = "is" if text == host else "resolves to"
            raise RefusedTarget(f"{host} {shown} a loopback or private address ({text})")


async def system_resolver(host: str, port: int) -> list[str]:
    """The system's answer for `host` (an IP literal is its own answer), duplicates removed."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[str] = []
    for info in infos:
        text = str(info[4][0])
        if text not in found:
            found.append(text)
    return found
