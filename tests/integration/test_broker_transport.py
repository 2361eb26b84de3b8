"""The AMQP connection's transport: frames written in one event loop turn leave in one write,
and concurrent publishes are not sent one per turn (real sockets, real RabbitMQ)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiormq.connection
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from yarl import URL

from tests.in_process import eventually
from ttsqueue.broker.connection import ClusterConnection, _cluster_class
from ttsqueue.broker.publisher import Publisher
from ttsqueue.broker.topology import QueueInspector, QueueNames
from ttsqueue.broker.transport import CoalescingWriter
from ttsqueue.config import Settings
from ttsqueue.errors import BrokerUnavailableError

pytestmark = pytest.mark.timeout(30)


@asynccontextmanager
async def peer() -> AsyncIterator[tuple[CoalescingWriter, asyncio.Queue[bytes]]]:
    """A `CoalescingWriter` connected to a local TCP server; the queue gets what the server
    reads, and b"" at end of stream."""
    received: asyncio.Queue[bytes] = asyncio.Queue()
    served = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                received.put_nowait(data)
            received.put_nowait(b"")
        finally:
            writer.close()
            await writer.wait_closed()
            served.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    protocol = asyncio.StreamReaderProtocol(reader)
    transport, _ = await loop.create_connection(lambda: protocol, "127.0.0.1", port)
    writer = CoalescingWriter(transport, protocol, reader, loop)
    try:
        yield writer, received
    finally:
        writer.close()
        await asyncio.wait_for(served.wait(), 5)  # the server's side is closed too
        server.close()
        await server.wait_closed()


async def read_until(received: asyncio.Queue[bytes], size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += await asyncio.wait_for(received.get(), 5)
    return data


async def test_writes_of_one_turn_reach_the_socket_as_one_write_in_order() -> None:
    async with peer() as (writer, received):
        writer.write(b"one ")
        writer.writelines([b"two ", bytearray(b"three ")])
        writer.write(memoryview(b"four"))
        assert (writer.flushes, writer.chunks) == (0, 0)  # nothing leaves before the turn ends
        assert await read_until(received, 18) == b"one two three four"
        assert (writer.flushes, writer.chunks) == (1, 4)


async def test_writes_of_separate_turns_leave_separately() -> None:
    async with peer() as (writer, received):
        writer.write(b"a")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        writer.write(b"b")
        assert await read_until(received, 2) == b"ab"
        assert (writer.flushes, writer.chunks) == (2, 2)


async def test_drained_writes_of_one_turn_still_share_a_write() -> None:
    """aiormq drains after each frame it was asked to (an ack, a handshake step): drain is flow
    control, so those frames still leave together at the end of the turn."""
    async with peer() as (writer, received):
        for frame in (b"ack-1 ", b"ack-2 ", b"ack-3"):
            writer.write(frame)
            await writer.drain()
        assert await read_until(received, 17) == b"ack-1 ack-2 ack-3"
        assert (writer.flushes, writer.chunks) == (1, 3)


async def test_close_and_write_eof_send_what_is_pending_first() -> None:
    async with peer() as (writer, received):
        writer.write(b"closing frame")
        writer.write_eof()
        assert await read_until(received, 13) == b"closing frame"
        assert await asyncio.wait_for(received.get(), 5) == b""  # then the end of stream
    async with peer() as (writer, received):
        writer.write(b"last words")
        writer.close()
        await writer.wait_closed()
        assert await read_until(received, 10) == b"last words"


async def test_writes_after_the_transport_closed_are_dropped_quietly() -> None:
    async with peer() as (writer, _):
        writer.transport.abort()
        writer.write(b"too late")
        await asyncio.sleep(0.01)  # the flush runs: nothing raised, nothing counted
        assert (writer.flushes, writer.chunks) == (0, 0)


async def test_plain_nodes_get_the_coalescing_transport_and_tls_nodes_keep_aiormqs() -> None:
    plain = _cluster_class(["amqp://guest:guest@127.0.0.1:5672/"])
    assert plain(URL("amqp://guest:guest@127.0.0.1:5672/")).transport_factory is not None
    mixed_urls = ["amqp://guest:guest@127.0.0.1:5672/", "amqps://guest:guest@127.0.0.1:5671/"]
    mixed = _cluster_class(mixed_urls)
    connection = mixed(URL(mixed_urls[0]))
    assert connection.transport_factory is None
    assert "transport_factory" not in connection.kwargs


async def test_the_frame_queue_never_makes_a_publish_wait(
    broker: AbstractRobustConnection,
) -> None:
    assert aiormq.connection.Connection.FRAME_BUFFER_SIZE == 0  # unbounded asyncio.Queue
    assert isinstance(broker, ClusterConnection)
    underlay = broker.transport
    assert underlay is not None
    assert underlay.connection.write_queue.maxsize == 0


async def test_a_held_consumer_channel_does_not_hold_back_another_channels_confirms(
    broker: AbstractRobustConnection, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A consumer channel that has not taken its deliveries yet (a worker's, busy with jobs)
    must not stop the frames of the connection's other channels: with aiormq's default of ten
    frames per channel, the connection's reader stopped at the eleventh, and a publish on the
    same connection was confirmed only once the consumer had taken the frames before it."""
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    publisher = Publisher(broker, names)
    backlog = 20
    await asyncio.gather(
        *(publisher.to_work_queue(names.calls, b"{}", f"b-{n}") for n in range(backlog))
    )
    channel = await broker.channel(publisher_confirms=False)
    await channel.set_qos(prefetch_count=backlog)
    underlay = await channel.get_underlay_channel()
    assert isinstance(underlay, aiormq.Channel)
    # The consumer channel's reader stops at its first delivery until released.
    release = asyncio.Event()
    take_delivery = underlay._on_deliver_frame

    async def held(frame: aiormq.spec.Basic.Deliver) -> None:
        await release.wait()
        await take_delivery(frame)

    monkeypatch.setattr(underlay, "_on_deliver_frame", held)
    received: list[str] = []
    all_received = asyncio.Event()

    async def consume(message: AbstractIncomingMessage) -> None:
        received.append(message.message_id or "")
        if len(received) == backlog:
            all_received.set()

    async def all_frames_wait() -> bool:
        return underlay.frames.qsize() >= 3 * backlog - 1

    queue = await channel.get_queue(names.calls)
    tag = await queue.consume(consume)
    try:
        # Every delivery has reached the held channel (three frames each, the first taken):
        # more than ten frames wait there, ahead of anything the broker sends next.
        await eventually(all_frames_wait, 10, "every delivery waiting in the held channel")
        async with asyncio.timeout(5):
            await publisher.to_work_queue(names.priority, b"{}", "behind-the-backlog")
        assert received == []  # confirmed while the consumer had taken nothing
        release.set()
        await asyncio.wait_for(all_received.wait(), 10)
        assert sorted(received) == sorted(f"b-{n}" for n in range(backlog))
    finally:
        release.set()
        await queue.cancel(tag)
        await channel.close()


def coalescing_writer(broker: AbstractRobustConnection) -> CoalescingWriter:
    """The writer of the product's connection to the local (plain) RabbitMQ node."""
    assert isinstance(broker, ClusterConnection)
    assert broker.transport_factory is not None
    writer = broker.transport_factory.writer
    assert writer is not None
    return writer


async def test_publishes_ready_in_one_turn_leave_together_each_confirmed(
    broker: AbstractRobustConnection, settings: Settings
) -> None:
    """300 publishes started in one turn: with aiormq's bounded frame queue the channel's
    lock sent them one per turn (300 writes); here a few writes carry them all."""
    writer = coalescing_writer(broker)
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    publisher = Publisher(broker, names)
    await publisher.to_work_queue(names.calls, b"{}", "warm-up")  # opens the channel
    flushes, chunks = writer.flushes, writer.chunks
    ids = [f"m-{n:03d}" for n in range(300)]
    await asyncio.gather(*(publisher.to_work_queue(names.calls, m.encode(), m) for m in ids))
    assert writer.chunks - chunks >= len(ids)  # every publish's frames went through it
    assert writer.flushes - flushes <= 10
    depths = await QueueInspector(broker, names).depths()
    assert depths["normal"] == len(ids) + 1


async def test_publishes_that_wait_for_the_channel_to_open_leave_together(
    broker: AbstractRobustConnection, settings: Settings
) -> None:
    """A fresh publisher (a process that just started, or a channel lost): the publishes that
    arrive while its channel opens resume in the turn it opens, not one per turn."""
    writer = coalescing_writer(broker)
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    publisher = Publisher(broker, names)
    assert broker.transport is not None
    channels_before = len(broker.transport.connection.channels)
    flushes = writer.flushes
    ids = [f"m-{n:03d}" for n in range(100)]
    await asyncio.gather(*(publisher.to_work_queue(names.calls, m.encode(), m) for m in ids))
    # The channel's opening takes a few round trips; the 100 publishes leave in one or two.
    assert writer.flushes - flushes <= 10
    assert len(broker.transport.connection.channels) == channels_before + 1  # one opening
    depths = await QueueInspector(broker, names).depths()
    assert depths["normal"] == len(ids)


async def test_an_opening_that_fails_fails_every_publish_waiting_and_the_next_one_retries(
    broker: AbstractRobustConnection, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    publisher = Publisher(broker, names, deadline_s=2.0)
    openings = 0
    real_channel = broker.channel

    async def refused(*args: object, **kwargs: object) -> AbstractChannel:
        nonlocal openings
        openings += 1
        await asyncio.sleep(0.05)
        raise aiormq.exceptions.ChannelNotFoundEntity("refused by the test")

    monkeypatch.setattr(broker, "channel", refused)
    failed = await asyncio.gather(
        *(publisher.to_work_queue(names.calls, b"{}", f"f-{n}") for n in range(20)),
        return_exceptions=True,
    )
    assert all(isinstance(error, BrokerUnavailableError) for error in failed)
    assert openings == 1  # one opening, shared
    monkeypatch.setattr(broker, "channel", real_channel)
    await publisher.to_work_queue(names.calls, b"{}", "after")
    depths = await QueueInspector(broker, names).depths()
    assert depths["normal"] == 1
