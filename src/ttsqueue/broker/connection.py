"""Robust (reconnecting) RabbitMQ connections with heartbeats, named after their process.

`RABBITMQ_URL` may name several nodes of a cluster (comma-separated). A connection tries them
in turn, from the one after the node it last used, and moves on whenever its node goes away;
the channels, consumers and publisher confirms of the robust connection are restored on the
node it reaches.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any, ClassVar

import aio_pika
import aiormq.connection
from aio_pika.abc import AbstractRobustConnection, TimeoutType
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from aio_pika.robust_connection import RobustConnection
from yarl import URL

from ttsqueue.broker.transport import CoalescingTCPTransportFactory
from ttsqueue.config import split_urls
from ttsqueue.logs import get_logger

log = get_logger("ttsqueue.broker")

HEARTBEAT_S = 30
# One connection attempt to one node: a node cut off by the network (packets dropped) costs
# this long before the next one is tried.
CONNECT_TIMEOUT_S = 5.0

# aiormq hands outgoing frames to its writer task through a queue of
# `Connection.FRAME_BUFFER_SIZE` (10). A publish that finds it full waits for room while
# holding its channel's lock, and every publish behind it queues for that lock; asyncio then
# hands the free lock to one waiter per event loop turn, so from that moment the channel sends
# one message per turn however many are ready (measured: one frame per turn with 64 requests
# in flight, and each its own `send()`). Unbounded, a publish never waits there. The frames
# waiting never outnumber the publishes in flight, each awaited by its caller until confirmed
# or past its deadline, and aiormq's writer hands them to the transport as they come, without
# waiting for its buffer to drain: the bound never limited memory. Set once for the process,
# before any connection is made.
if not hasattr(aiormq.connection.Connection, "FRAME_BUFFER_SIZE"):  # pragma: no cover
    raise ImportError("aiormq's Connection has no FRAME_BUFFER_SIZE: update connection.py")
aiormq.connection.Connection.FRAME_BUFFER_SIZE = 0  # asyncio.Queue: 0 means unbounded

# The same bound (10, `channel()`'s default, fixed when aiormq is imported) sits on the way
# in: the connection's reader hands each incoming frame to its channel's queue, and one full
# queue stops the reader for every channel of the connection. A worker's consumer channel
# receives up to its prefetch in deliveries (WORKER_CONCURRENCY + the calls it may follow), and
# takes them ten frames per two loop turns while jobs run: a publish confirm or a channel's
# opening on the same connection waited behind all of them. Measured with one worker and a
# prefetch of 1,032: the audit publisher's channel took 2.2 s to open and its confirms 1.0 s
# (median) to come; thousands of publishes waited meanwhile, and their objects doubled the
# garbage collector's work. Unbounded: 0.03 s and 0.017 s. What waits in these queues is
# bounded by the broker: the prefetch in deliveries, a reply per request, a confirm per
# publish in flight.
_OPEN_CHANNEL = aiormq.connection.Connection.channel
_DEFAULTS = _OPEN_CHANNEL.__defaults__ or ()
_POSITIONAL = list(inspect.signature(_OPEN_CHANNEL).parameters)[1:]
if _POSITIONAL[:4] != ["channel_number", "publisher_confirms", "frame_buffer_size", "timeout"] or (
    len(_DEFAULTS) != 4
):  # pragma: no cover - guards an upgrade
    raise ImportError("aiormq's Connection.channel changed its parameters: update connection.py")
_OPEN_CHANNEL.__defaults__ = (_DEFAULTS[0], _DEFAULTS[1], 0, _DEFAULTS[3])  # frame_buffer_size

# The robust connection's own (private) step that opens one transport to `self.url`. Each
# reconnection goes through it, so overriding it here picks the node of every attempt.
_CONNECT_STEP = "_RobustConnection__connect_transport"
if not hasattr(RobustConnection, _CONNECT_STEP):  # pragma: no cover - guards an upgrade
    raise ImportError(f"aio_pika's RobustConnection has no {_CONNECT_STEP}: update connection.py")


class ClusterConnection(RobustConnection):
    """A robust connection over several nodes: each (re)connection takes the next live one."""

    NODES: ClassVar[tuple[URL, ...]] = ()

    def __init__(self, url: URL, *args: Any, **kwargs: Any) -> None:
        super().__init__(url, *args, **kwargs)
        self._next_node = 0
        # Plain TCP nodes get frames written once per loop turn (broker/transport.py); TLS
        # nodes keep aiormq's own transport.
        self.transport_factory: CoalescingTCPTransportFactory | None = None
        if all(node.scheme == "amqp" for node in self.NODES or (self.url,)):
            self.transport_factory = CoalescingTCPTransportFactory()
            self.kwargs["transport_factory"] = self.transport_factory

    async def connect(self, timeout: TimeoutType = None) -> None:
        """Connect, or leave nothing behind. aio-pika's robust connection connects in a task
        of its own: a caller that gives up (cancelled while connecting, as a stopping
        dashboard or an interrupted start does) would leave that task to finish the handshake
        and keep a connection nobody holds or closes."""
        try:
            await super().connect(timeout)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.close()
            raise

    @property
    def node(self) -> str:
        """host:port of the node this connection uses (or tried last)."""
        return f"{self.url.host}:{self.url.port}"

    async def _RobustConnection__connect_transport(self) -> None:
        nodes = self.NODES or (self.url,)
        parent = getattr(RobustConnection, _CONNECT_STEP)
        failure: BaseException | None = None
        for _ in nodes:
            index = self._next_node % len(nodes)
            self.url = nodes[index]
            try:
                await parent(self)
            except CONNECTION_EXCEPTIONS as exc:
                self._next_node = index + 1
                failure = exc
                continue
            # The next reconnection starts from the following node: the one that just
            # dropped this connection is the least likely to be back.
            self._next_node = index + 1
            if len(nodes) > 1:
                log.info("connected to RabbitMQ node", node=self.node)
            return
        assert failure is not None
        raise failure


def _cluster_class(urls: list[str]) -> type[ClusterConnection]:
    nodes = tuple(URL(url) for url in urls)
    return type("ClusterConnection", (ClusterConnection,), {"NODES": nodes})


async def connect_broker(url: str, *, name: str) -> AbstractRobustConnection:
    """A robust connection to `url`: one AMQP URL or several, comma-separated."""
    urls = split_urls(url)
    return await aio_pika.connect_robust(
        urls[0],
        heartbeat=HEARTBEAT_S,
        client_properties={"connection_name": name},
        reconnect_interval=1.0,
        fail_fast=True,
        timeout=CONNECT_TIMEOUT_S,
        connection_class=_cluster_class(urls),
    )


async def connect_plain(url: str, *, name: str) -> aio_pika.abc.AbstractConnection:
    """A one-off (non-reconnecting) connection to the first node of `url` that answers."""
    failure: BaseException | None = None
    for node in split_urls(url):
        try:
            return await aio_pika.connect(
                node, client_properties={"connection_name": name}, timeout=CONNECT_TIMEOUT_S
            )
        except CONNECTION_EXCEPTIONS as exc:
            failure = exc
    assert failure is not None
    raise failure
