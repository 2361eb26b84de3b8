"""Script calls written and read straight through the connection (store/wire.py), against real
Redis: a reply later than the socket timeout is the store's "unavailable", a caller that stops
waiting leaves no reply behind for the next one, and redis-py's public path still serves a
connection the short path cannot use."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from tests.conftest import REDIS_URL
from tests.faults.servers import RedisServer
from ttsqueue.errors import StoreError, StoreUnavailableError
from ttsqueue.store import wire
from ttsqueue.store.connection import StoreClient, connect_redis

pytestmark = pytest.mark.timeout(60)

ECHO = "return {KEYS[1], ARGV[1]}"
FAILS_ON_BAD = (
    "if ARGV[1] == 'bad' then return redis.error_reply('ERR refused ' .. ARGV[1]) end "
    "return ARGV[1]"
)
# Busy for ARGV[1] ms, then answers ARGV[2].
SLOW = """
local started = redis.call('TIME')
local function elapsed_ms()
  local now = redis.call('TIME')
  return (now[1] - started[1]) * 1000 + (now[2] - started[2]) / 1000
end
while elapsed_ms() < tonumber(ARGV[1]) do end
return ARGV[2]
"""


@pytest.fixture
async def client() -> AsyncIterator[StoreClient]:
    made = connect_redis(REDIS_URL, client_name=f"wire-{uuid.uuid4().hex[:8]}")
    yield made
    await made.aclose()


async def test_the_short_path_serves_the_store_s_connections(client: StoreClient) -> None:
    echo = client.register_script(ECHO)
    await echo(keys=["warm"], args=["up"])
    connection = await client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        assert wire.usable(connection)
    finally:
        await client.connection_pool.release(connection)


async def test_a_reply_later_than_the_socket_timeout_is_unavailable_then_calls_work_again(
    private_redis: RedisServer,
) -> None:
    client = connect_redis(private_redis.url, client_name="wire-timeout")
    client.connection_pool.connection_kwargs["socket_timeout"] = 0.5
    try:
        slow = client.register_script(SLOW)
        assert await slow(args=["0", "warm"]) == "warm"
        with pytest.raises(StoreUnavailableError):
            # Each retry waits for the busy server too: all of them run out of time.
            await slow(args=["1500", "late"])
        echo = client.register_script(ECHO)
        # Once Redis is free again, the next call gets its own reply, not a late one.
        for _ in range(100):
            try:
                assert await echo(keys=["k"], args=["after"]) == ["k", "after"]
                break
            except StoreUnavailableError:
                await asyncio.sleep(0.2)
        else:
            pytest.fail("calls did not work again once Redis was free")
    finally:
        await client.aclose()


async def test_a_caller_that_stops_waiting_alone_leaves_no_reply_for_the_next_call(
    private_redis: RedisServer,
) -> None:
    client = connect_redis(private_redis.url, client_name="wire-cancel")
    try:
        slow = client.register_script(SLOW)
        echo = client.register_script(ECHO)
        await slow(args=["0", "warm"])
        await echo(keys=["warm"], args=["up"])
        waiting = asyncio.ensure_future(slow(args=["300", "slow reply"]))
        await asyncio.sleep(0.1)  # sent, alone in its turn; Redis is busy with it
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # The connection that carried it was dropped: these replies are their own.
        replies = [await echo(keys=["k"], args=[str(i)]) for i in range(3)]
        assert replies == [["k", "0"], ["k", "1"], ["k", "2"]]
    finally:
        await client.aclose()


async def test_redis_py_s_public_path_serves_a_connection_the_short_path_cannot_use(
    client: StoreClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wire, "usable", lambda connection: False)
    script = client.register_script(FAILS_ON_BAD)
    alone = await script(args=["alone"])
    shared = await asyncio.gather(
        script(args=["a"]), script(args=["bad"]), script(args=["b"]), return_exceptions=True
    )
    assert alone == "alone"
    assert shared[0] == "a"
    assert shared[2] == "b"
    assert isinstance(shared[1], StoreError)
    assert not isinstance(shared[1], StoreUnavailableError)
    assert await script(args=["after"]) == "after"
