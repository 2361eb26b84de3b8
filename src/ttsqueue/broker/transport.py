"""The TCP transport under every AMQP connection: frames written in one loop turn go out together.

aiormq writes each frame set (a publish, an ack) with its own `StreamWriter.write`, and on an
idle socket each write is a `send()` system call. When a Redis reply lets several requests or
jobs go on in the same turn of the event loop, each then publishes or acks: `CoalescingWriter`
keeps what is written during the turn and hands it to the transport at its end, in order, as
one write. Nothing waits on a timer: the flush is a callback of the same loop, run before
it next waits for the network, and `close` and `write_eof` flush first, so the closing
frame goes out.

It plugs in through aiormq's `TransportFactory`, its way to open the connection's transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiormq.connection import TransportFactory
from aiormq.exceptions import AMQPConnectionError
from yarl import URL

Chunk = bytes | bytearray | memoryview


class CoalescingWriter(asyncio.StreamWriter):
    """A `StreamWriter` whose writes of one event loop turn reach the socket as one."""

    def __init__(
        self,
        transport: asyncio.WriteTransport,
        protocol: asyncio.BaseProtocol,
        reader: asyncio.StreamReader | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(transport, protocol, reader, loop)
        self._pending: list[Chunk] = []
        self._flush_loop = loop
        # Writes handed to the transport and the chunks they carried: read by the tests.
        self.flushes = 0
        self.chunks = 0

    def write(self, data: Chunk) -> None:
        if not data:
            return
        if not self._pending:
            self._flush_loop.call_soon(self.flush)
        self._pending.append(data)

    def writelines(self, data: Iterable[Chunk]) -> None:
        for chunk in data:
            self.write(chunk)

    def flush(self) -> None:
        """Hand what this turn wrote to the transport (nothing to do once flushed)."""
        if not self._pending:
            return
        chunks, self._pending = self._pending, []
        if self.transport.is_closing():
            return  # the connection is gone; aiormq learns it from its reader
        self.flushes += 1
        self.chunks += len(chunks)
        self.transport.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))

    # `drain` is left as it is: it waits for room in the transport's buffer (flow control), not
    # for bytes to leave, so an ack written with aiormq's drain still shares its turn's write.

    def write_eof(self) -> None:
        self.flush()
        super().write_eof()

    def close(self) -> None:
        self.flush()
        super().close()


class CoalescingTCPTransportFactory(TransportFactory):
    """Plain TCP to the broker, written through a `CoalescingWriter`."""

    def __init__(self) -> None:
        # The writer of the transport opened last (a reconnection opens a new one).
        self.writer: CoalescingWriter | None = None

    async def create(
        self, url: URL, **kwargs: Any
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        # aiormq hands its TLS helper to every factory; plain TCP has no use for it.
        kwargs.pop("ssl_context_provider", None)
        if url.host is None or url.port is None:
            raise AMQPConnectionError(f"no host or port in the broker URL {url.host}:{url.port}")
        host, port = url.host, url.port
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            transport, _ = await loop.create_connection(
                lambda: protocol, host=host, port=port, **kwargs
            )
        except OSError as exc:
            raise AMQPConnectionError(*exc.args) from exc
        self.writer = CoalescingWriter(transport, protocol, reader, loop)
        return reader, self.writer
