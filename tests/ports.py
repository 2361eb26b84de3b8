"""Free TCP ports for private servers, chosen outside the kernel's ephemeral range.

A port from `bind(("127.0.0.1", 0))` comes from the same range the kernel draws the local
port of every outgoing connection from. Between the moment such a port is handed out and
the moment a server binds it, any client connection made meanwhile (the suite makes
thousands) may take it, and the server then fails to bind. Worse, polling a port of that
range until a server listens can connect the socket to itself (a TCP self-connect), which
looks like an open port while the server is still booting. A port below the range is never
given to an outgoing connection, so neither can happen.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_PORT = 10000
ATTEMPTS = 500


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux's default if unknown)."""
    try:
        low, high = (int(part) for part in EPHEMERAL_RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def candidate_range() -> tuple[int, int]:
    low, high = ephemeral_range()
    if low - 1 - LOWEST_PORT >= 2000:
        return LOWEST_PORT, low - 1
    return high + 1, 65535


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing holds now and no outgoing connection will take.

    Random rather than sequential so that parallel test processes rarely pick the same one.
    """
    low, high = candidate_range()
    for _ in range(ATTEMPTS):
        port = random.randint(low, high)
        if _bindable(port):
            return port
    raise RuntimeError(f"no free TCP port between {low} and {high}")
