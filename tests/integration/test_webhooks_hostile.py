"""Hostile webhook receivers, as real local TCP servers: a gzip bomb, an endless body and a
server that drips its answer cost a worker nothing; a URL the client cannot encode is refused
at submission and, if it is in the stream anyway, ends that delivery and nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from tests.integration.test_webhooks import BODY, SECRET, Recorder, listening
from ttsqueue.config import Settings
from ttsqueue.store.factory import keys_for
from ttsqueue.store.keys import Keys
from ttsqueue.webhooks.delivery import DeliveryFailed, UndeliverableUrl, deliver
from ttsqueue.webhooks.dispatcher import WebhookDispatcher
from ttsqueue.webhooks.guard import webhook_client

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.settings(
        WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_SECRET=SECRET, WEBHOOK_RETRY_BASE_SECONDS=0.1
    ),
]

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Hostile:
    """A raw TCP server running `answer` for each connection; counts the bytes it sent."""

    def __init__(self, answer: Callable[[Hostile, asyncio.StreamWriter], Awaitable[None]]):
        self.answer = answer
        self.sent = 0
        self.closed_by_client = asyncio.Event()
        self.handlers: set[asyncio.Task[Any]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            await self._answer(reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")  # the request head; its small body is left
            await self.answer(self, writer)
        self.closed_by_client.set()

    async def write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()
        self.sent += len(data)


@contextlib.asynccontextmanager
async def hostile_server(hostile: Hostile) -> AsyncIterator[str]:
    server = await asyncio.start_server(hostile.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        server.close()
        for task in hostile.handlers:  # a server still dripping when the client gave up
            task.cancel()
        await asyncio.gather(*hostile.handlers, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await server.wait_closed()


async def endless_body(hostile: Hostile, writer: asyncio.StreamWriter) -> None:
    await hostile.write(writer, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # bounded, in case the client reads it all
        await hostile.write(writer, chunk)


BOMB = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)


async def gzip_bomb(hostile: Hostile, writer: asyncio.StreamWriter) -> None:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BOMB)
    )
    await hostile.write(writer, head + BOMB)


async def slow_drip(hostile: Hostile, writer: asyncio.StreamWriter) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
        await hostile.write(writer, bytes([byte]))
        await asyncio.sleep(0.5)  # each byte well within any per-read timeout


async def test_an_endless_body_is_never_read() -> None:
    hostile = Hostile(endless_body)
    async with (
        hostile_server(hostile) as url,
        webhook_client(timeout=5, allow_private=True) as client,
    ):
        async with asyncio.timeout(20):
            await deliver(client, url, BODY, secret=SECRET, deadline_s=5)
            await hostile.closed_by_client.wait()
    # Only what the kernel buffers took before the client hung up: nothing like 30 s of data.
    assert hostile.sent < 16 * 1024 * 1024


async def test_a_gzip_bomb_is_never_decompressed() -> None:
    hostile = Hostile(gzip_bomb)
    async with (
        hostile_server(hostile) as url,
        webhook_client(timeout=5, allow_private=True) as client,
    ):
        tracemalloc.start()
        try:
            await deliver(client, url, BODY, secret=SECRET, deadline_s=5)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"{peak} bytes at peak for a 64 MiB bomb"


async def test_a_dripping_answer_meets_one_overall_deadline() -> None:
    hostile = Hostile(slow_drip)
    async with (
        hostile_server(hostile) as url,
        webhook_client(timeout=5, allow_private=True) as client,
    ):
        began = time.monotonic()
        with pytest.raises(DeliveryFailed, match="no answer within"):
            await deliver(client, url, BODY, secret=SECRET, deadline_s=1.5)
        # Far from the ~20 s the whole drip takes (generous: a loaded machine).
        assert time.monotonic() - began < 12


async def test_a_url_the_client_cannot_encode_fails_only_its_own_delivery() -> None:
    async with webhook_client(timeout=5, allow_private=True) as client:
        with pytest.raises(UndeliverableUrl):
            await deliver(client, "http://xn--zz.com/", BODY, secret=SECRET)


async def test_the_stream_moves_on_after_an_undeliverable_url(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    """The same job's next event, and another job's, are still delivered."""
    keys = Keys(settings.REDIS_PREFIX)
    recorder = Recorder()
    async with listening(recorder.app()) as port:
        good = f"http://127.0.0.1:{port}/hook"
        for job_id, url in (("j-1", "http://xn--zz.com/"), ("j-1", good), ("j-2", good)):
            await redis_client.xadd(
                keys.webhooks, {"job_id": job_id, "url": url, "body": BODY.decode()}
            )
        dispatcher = WebhookDispatcher(redis_client, keys_for(settings), settings, consumer="test")
        with capture_logs() as logs:
            task = asyncio.create_task(dispatcher.run())
            try:
                for _ in range(600):
                    if len(recorder.requests) >= 2 and not await redis_client.xlen(keys.webhooks):
                        break
                    await asyncio.sleep(0.05)
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    assert len(recorder.requests) == 2
    refused = [e for e in logs if e["event"] == "webhook refused"]
    assert len(refused) == 1


async def test_callback_urls_are_checked_with_the_clients_parser(api: httpx.AsyncClient) -> None:
    for url in ("http://xn--zz.com/", "http://xn--.com/hook"):
        reply = await api.post(
            "/tts/call", json={"text": "Hola", "phone_number": "3005050149", "callback_url": url}
        )
        assert reply.status_code == 422, url
        body: dict[str, Any] = reply.json()
        assert "callback_url" in body["error"]
