"""The real API app served by uvicorn on a free port, from a background thread with its own
event loop, so synchronous clients (schemathesis, requests) can talk HTTP to it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator

import httpx

from tests import redis_leftovers
from tests.http_servers import quiet_server
from tests.ports import free_port
from ttsqueue.api.app import create_app
from ttsqueue.broker.connection import connect_broker
from ttsqueue.broker.topology import QueueNames
from ttsqueue.config import Settings


@contextlib.contextmanager
def serve_api(settings: Settings, timeout: float = 30.0) -> Iterator[str]:
    """Yields the base URL once /health answers; stops the server and removes the queues
    and keys the run created afterwards."""
    port = free_port()
    server = quiet_server(create_app(settings), port)
    thread = threading.Thread(target=server.run, name="fuzz-api", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.05)
        yield url
    finally:
        server.should_exit = True
        thread.join(30)
        asyncio.run(_remove_traces(settings))
        redis_leftovers.wipe(settings.REDIS_URL, settings.REDIS_PREFIX)


async def _remove_traces(settings: Settings) -> None:
    """The queues and exchanges of the run (its keys go after, `redis_leftovers.wipe`)."""
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    connection = await connect_broker(settings.RABBITMQ_URL, name="fuzz-cleanup")
    try:
        for queue in names.queues():
            channel = await connection.channel()
            await channel.queue_delete(queue)
        channel = await connection.channel()
        for exchange in names.exchanges():
            await channel.exchange_delete(exchange)
    finally:
        await connection.close()
