"""The store's connection pool against real Redis: a free connection is taken without waiting,
and callers beyond the bound wait for one instead of failing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import REDIS_URL
from tests.in_process import connections_closed
from ttsqueue.errors import StoreUnavailableError
from ttsqueue.store.connection import BoundedPool, connect_redis

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def pool() -> AsyncIterator[BoundedPool]:
    made = BoundedPool.from_url(REDIS_URL, max_connections=2, timeout=20)
    yield made
    await made.aclose()


async def test_a_free_connection_is_taken_and_works(pool: BoundedPool) -> None:
    connection: Any = await pool.get_connection()
    try:
        await connection.send_command("PING")
        assert await connection.read_response() in (b"PONG", "PONG")
    finally:
        await pool.release(connection)


async def test_callers_beyond_the_bound_wait_for_a_connection(pool: BoundedPool) -> None:
    held = [await pool.get_connection(), await pool.get_connection()]
    third = asyncio.create_task(pool.get_connection())
    # It waits (a plain pool would have raised MaxConnectionsError at once) ...
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(third), 0.5)
    # ... and gets the connection given back.
    given_back = held.pop()
    await pool.release(given_back)
    assert await asyncio.wait_for(third, 30) is given_back
    await pool.release(given_back)
    await pool.release(held.pop())


async def test_a_closed_client_refuses_commands_instead_of_reconnecting() -> None:
    """A task still running when its client was closed (an audit write, a confirm) gets the
    store's error: a connection opened then would never be closed."""
    name = f"pool-closed-{uuid.uuid4().hex[:8]}"
    client = connect_redis(REDIS_URL, client_name=name)
    admin = connect_redis(REDIS_URL, client_name="pool-admin")
    try:
        script = client.register_script("return 1")
        assert await script() == 1
        await client.aclose()
        with pytest.raises(StoreUnavailableError):
            await client.get("pool-closed:absent")
        with pytest.raises(StoreUnavailableError):
            await asyncio.gather(script(), script())  # a shared write, too
        pipe = client.pipeline()
        pipe.get("pool-closed:absent")
        with pytest.raises(StoreUnavailableError):
            await pipe.execute()
        await connections_closed(admin, name)
    finally:
        await client.aclose()
        await admin.aclose()
