"""The real API app served by uvicorn on a free port, from a background thread with its own
event loop, so synchronous clients (schemathesis, requests) can talk HTTP to it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator

import httpx

from tests.http_servers import free_port, quiet_server
from ttsqueue.api.app import create_app
from ttsqueue.broker.connection import connect_broker
from ttsqueue.broker.topology import QueueNames
from ttsqueue.config import Settings
from ttsqueue.store.connection import connect_redis


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


async def _remove_traces(settings: Settings) -> None:
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
    redis = connect_redis(settings.REDIS_URL, client_name="fuzz-cleanup")
    try:
        async for key in redis.scan_iter(match=f"{settings.REDIS_PREFIX}*", count=1000):
            await redis.unlink(key)
    finally:
        await redis.aclose()
