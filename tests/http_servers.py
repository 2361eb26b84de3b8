"""Serving the real ASGI apps over real HTTP inside a test: a free port and a quiet uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from tests.ports import free_port


def quiet_server(app: Any, port: int) -> uvicorn.Server:
    """uvicorn as the product runs it (its own logging configuration left alone), fast to stop."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    return uvicorn.Server(config)


@contextlib.asynccontextmanager
async def serving(app: Any, start_timeout: float = 20.0) -> AsyncIterator[str]:
    """Serve `app` on this event loop; yields its base URL once uvicorn has started."""
    port = free_port()
    server = quiet_server(app, port)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(start_timeout):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait({task}, timeout=20)
