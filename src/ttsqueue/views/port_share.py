"""Several server processes on one port, each accepting on a listening socket of its own.

uvicorn's processes (`workers`) share the one listening socket their parent bound. Every
process waits on it, and the one the kernel wakes first accepts every connection waiting: the
64 connections `bench_ingest.py` opens at once ended 42 in one process and 22 in the other.
With SO_REUSEPORT each process listens on a socket of its own, bound to the same address, and
the kernel spreads new connections across them by their addresses' hash.

The parent keeps a socket bound the same way that never listens: it holds the port, so that a
port already in use stops the start with a clear error, and no connection is ever queued on
it. uvicorn hands the parent's sockets to each process it starts (and restarts) by pickling
them; this one arrives as a new socket bound the same way, which that process alone listens
on. The cost: connections still waiting in the queue of a process that dies are reset, where
a shared socket kept them for the others.
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess


def _bind_reusable(sock: socket.socket, address: tuple[Any, ...]) -> None:
    """Bind `sock` to `address` with SO_REUSEPORT (closed if that fails)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise


def bind_reusable(family: int, address: tuple[Any, ...]) -> socket.socket:
    """A TCP socket bound to `address` with SO_REUSEPORT, not listening yet."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    _bind_reusable(sock, address)
    return sock


class SharedPort(socket.socket):
    """The parent's socket: bound, never listening; each process it is sent to gets a socket
    of its own, bound the same way (`bind_reusable`)."""

    def __reduce__(self) -> tuple[Any, tuple[int, tuple[Any, ...]]]:
        return bind_reusable, (int(self.family), self.getsockname())


def share_port(host: str, port: int) -> SharedPort:
    """Hold `host`:`port` for the processes to come (OSError if it is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = SharedPort(family, socket.SOCK_STREAM)
    _bind_reusable(sock, (host, port))
    return sock


def run_processes(config: uvicorn.Config) -> None:
    """uvicorn's supervisor over `config.workers` processes, each listening on its own socket
    (what `uvicorn.run` does for several workers, but for the sockets)."""
    held = share_port(config.host, config.port)
    try:
        Multiprocess(config, sockets=[held]).run()
    finally:
        held.close()
