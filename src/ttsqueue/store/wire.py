"""Commands on one redis-py connection: written at once, their replies read straight from the
connection's parser, all under one deadline.

redis-py's own path, per command, wraps the write in `asyncio.wait_for` (on Python 3.11 a task
of its own), opens a timeout scope for the reply and checks the connection's health. For the
short script calls a job is made of, that was up to a third of the client's work per call:
`benchmarks/bench_script_batching.py` measured 13-14 against 9-10 µs of client CPU per call
with 32 callers sharing writes, and 43-74 against 35-41 µs with two. Here a batch costs one
deadline, one write and one read per reply. Everything else about the connection stays
redis-py's: connecting, AUTH and SELECT, the master Sentinel names, the periodic health PING,
dropping it.

It uses two attributes of redis-py's asyncio connections that are not its public API
(`_writer`, the socket's stream, and `_parser`); `usable` is False on a connection without
them, and the caller then takes redis-py's public path (tests/integration/test_store_wire.py
runs both).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Called with each reply's index and the reply (a `ResponseError` for an error reply, which
# is read whole and leaves the connection in step).
OnReply = Callable[[int, Any], None]


def usable(connection: Any) -> bool:
    """Whether `exchange` can run on this connection (an open stream and a parser, and a
    socket timeout to bound the exchange with)."""
    return (
        getattr(connection, "_writer", None) is not None
        and getattr(connection, "_parser", None) is not None
        and connection.socket_timeout is not None
    )


async def connected(connection: Any) -> None:
    """Open the connection (redis-py's connect: handshake, AUTH, Sentinel) if it is not."""
    if not connection.is_connected:
        await connection.connect()


async def exchange(connection: Any, packed: list[bytes], count: int, on_reply: OnReply) -> None:
    """Write `packed` (`count` commands), then hand each reply to `on_reply` as it is read.

    A failure drops the connection (it is out of step) and is raised as redis-py raises it
    for one command (`ConnectionError`, `TimeoutError`), so the client's retry policy
    applies; replies handed over before it stand."""
    loop = asyncio.get_running_loop()
    if connection.health_check_interval and loop.time() > connection.next_health_check:
        await connection.check_health()
    try:
        async with asyncio.timeout(connection.socket_timeout):
            writer = connection._writer
            writer.writelines(packed)
            await writer.drain()
            parser = connection._parser
            for index in range(count):
                on_reply(index, await parser.read_response())
    except TimeoutError:
        await connection.disconnect(nowait=True)
        raise RedisTimeoutError("Timeout waiting for Redis's replies") from None
    except OSError as exc:
        await connection.disconnect(nowait=True)
        raise RedisConnectionError(f"Error talking to Redis: {exc!r}") from exc
    except BaseException:
        # A cancelled or failed read leaves replies unread: the connection cannot be reused.
        await connection.disconnect(nowait=True)
        raise
    if connection.health_check_interval:
        # What redis-py's read_response does after each reply: no PING while replies flow.
        connection.next_health_check = loop.time() + connection.health_check_interval
