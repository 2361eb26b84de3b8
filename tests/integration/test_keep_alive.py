"""The API's and the dashboard's HTTP server keep an idle connection open longer than the
clients that pool them (httpx, aiohttp: about 5 s), so that a pooled connection is never closed
by the server just as the client sends its next request on it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.ports import free_port
from ttsqueue.views.server import server_options

pytestmark = pytest.mark.timeout(60)

# Longer than httpx's keep-alive expiry and uvicorn's own default (both 5 s).
IDLE_S = 6.5


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[int]:
    port = free_port()
    config = uvicorn.Config(
        Starlette(routes=[Route("/", hello)]), host="127.0.0.1", port=port, **server_options()
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "the server did not start"
            await asyncio.sleep(0.05)
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def request_on(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert await asyncio.wait_for(reader.readexactly(2), 10) == b"ok"
    return head


async def test_an_idle_connection_is_still_served_after_the_clients_expiry() -> None:
    async with serving() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            assert (await request_on(reader, writer)).startswith(b"HTTP/1.1 200")
            await asyncio.sleep(IDLE_S)
            # Still open: the second request on the same connection gets its answer (a
            # server that had closed it would give end-of-file here).
            assert (await request_on(reader, writer)).startswith(b"HTTP/1.1 200")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
