"""A TCP forwarder that a test can cut: the app under test reaches RabbitMQ or Redis through
it, and `cut()` makes the service vanish (open connections reset, the port refusing new ones)
without touching the shared server; `blackhole()` makes it drop every byte instead, with the
connections left open (a network that loses packets: nothing fails, nothing answers)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit


class TcpProxy:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()
        self.dropping = False

    def blackhole(self) -> None:
        """From now on every byte, either way, is read and dropped; connections stay open."""
        self.dropping = True

    async def start(self) -> None:
        """Listen (again, on the same port after a `cut()`)."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def url_for(self, url: str) -> str:
        """`url` with its host and port replaced by this proxy's, user and path kept."""
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.dropping:
            self._writers.add(writer)
            task = asyncio.create_task(self._swallow(reader))
            self._pumps.add(task)
            task.add_done_callback(self._pumps.discard)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self._pumps.add(task)
            task.add_done_callback(self._pumps.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await source.read(65536):
                if self.dropping:
                    continue
                sink.write(data)
                await sink.drain()
        sink.transport.abort()

    async def _swallow(self, source: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            while await source.read(65536):
                pass

    async def cut(self) -> None:
        """Stop listening and reset every forwarded connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
        for task in list(self._pumps):
            task.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)


@contextlib.asynccontextmanager
async def tcp_proxy(url: str) -> AsyncIterator[TcpProxy]:
    """A proxy to the host and port of `url` (amqp://, redis://), cut on exit."""
    parts = urlsplit(url)
    default = {"amqp": 5672, "redis": 6379}[parts.scheme]
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or default)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.cut()
