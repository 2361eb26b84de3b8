"""Script calls made in one turn of the event loop share one write to real Redis, and each
caller still gets its own reply, its own error, and the client's retries."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.commands.core import AsyncScript

from tests.conftest import REDIS_URL
from tests.doubles.tcp_proxy import tcp_proxy
from tests.faults.servers import RedisServer
from tests.in_process import connections_closed
from ttsqueue.errors import StoreError, StoreUnavailableError
from ttsqueue.store.batching import MAX_BATCH
from ttsqueue.store.connection import StoreClient, connect_redis

pytestmark = pytest.mark.timeout(60)

ECHO = "return {KEYS[1], ARGV[1]}"
FAILS_ON_BAD = (
    "if ARGV[1] == 'bad' then return redis.error_reply('ERR refused ' .. ARGV[1]) end "
    "return ARGV[1]"
)


@pytest.fixture
async def client() -> AsyncIterator[StoreClient]:
    made = connect_redis(REDIS_URL, client_name=f"batching-{uuid.uuid4().hex[:8]}")
    yield made
    await made.aclose()


async def test_calls_of_one_turn_share_a_write_and_get_their_own_replies(
    client: StoreClient,
) -> None:
    echo = client.register_script(ECHO)
    await echo(keys=["warm"], args=["up"])  # loaded once, outside the counted turn
    writes, calls = client.batcher.writes, client.batcher.calls
    replies = await asyncio.gather(*(echo(keys=[f"k{i}"], args=[f"v{i}"]) for i in range(20)))
    assert replies == [[f"k{i}", f"v{i}"] for i in range(20)]
    assert client.batcher.calls - calls == 20
    assert client.batcher.writes - writes == 1


async def test_a_call_alone_in_its_turn_is_sent_by_its_caller_in_no_shared_write(
    client: StoreClient,
) -> None:
    echo = client.register_script(ECHO)
    await echo(keys=["warm"], args=["up"])
    writes, calls = client.batcher.writes, client.batcher.calls
    for i in range(3):
        assert await echo(keys=["k"], args=[str(i)]) == ["k", str(i)]
    assert (client.batcher.writes, client.batcher.calls) == (writes, calls)


async def test_a_turn_with_more_calls_than_one_write_carries_is_sent_in_several(
    client: StoreClient,
) -> None:
    echo = client.register_script(ECHO)
    await echo(keys=["warm"], args=["up"])
    writes = client.batcher.writes
    count = 2 * MAX_BATCH + 10
    replies = await asyncio.gather(*(echo(keys=["k"], args=[str(i)]) for i in range(count)))
    assert replies == [["k", str(i)] for i in range(count)]
    assert client.batcher.writes - writes == 3


async def test_calls_queued_as_the_client_closes_are_answered_and_no_connection_stays_open() -> (
    None
):
    name = f"batching-close-{uuid.uuid4().hex[:8]}"
    client = connect_redis(REDIS_URL, client_name=name)
    admin = connect_redis(REDIS_URL, client_name="batching-admin")
    try:
        echo = client.register_script(ECHO)
        await echo(keys=["warm"], args=["up"])
        pending = asyncio.ensure_future(echo(keys=["k"], args=["v"]))
        await asyncio.sleep(0)  # queued; its write is not sent yet
        await client.aclose()
        assert pending.done()
        assert await pending == ["k", "v"]
        await connections_closed(admin, name)
    finally:
        await client.aclose()
        await admin.aclose()


async def test_an_error_reply_fails_its_own_call_only(client: StoreClient) -> None:
    script = client.register_script(FAILS_ON_BAD)
    await script(args=["warm"])
    results = await asyncio.gather(
        script(args=["a"]), script(args=["bad"]), script(args=["b"]), return_exceptions=True
    )
    assert results[0] == "a"
    assert results[2] == "b"
    assert isinstance(results[1], StoreError)
    assert not isinstance(results[1], StoreUnavailableError)
    assert "refused bad" in str(results[1].__cause__)
    assert await script(args=["after"]) == "after"  # the shared connection is still in step


async def test_scripts_redis_has_forgotten_are_loaded_again(private_redis: RedisServer) -> None:
    # A private server: flushing the shared one's scripts would reach other tests.
    client = connect_redis(private_redis.url, client_name="batching-flush")
    try:
        suffix = uuid.uuid4().hex
        script = client.register_script(f"return ARGV[1] .. '{suffix}'")
        await script(args=["x"])
        await client.script_flush()
        replies = await asyncio.gather(*(script(args=[str(i)]) for i in range(5)))
        assert replies == [f"{i}{suffix}" for i in range(5)]
    finally:
        await client.aclose()


async def test_a_caller_that_stops_waiting_leaves_the_others_their_replies(
    client: StoreClient,
) -> None:
    echo: AsyncScript = client.register_script(ECHO)
    await echo(keys=["warm"], args=["up"])
    first = asyncio.ensure_future(echo(keys=["a"], args=["1"]))
    dropped = asyncio.ensure_future(echo(keys=["b"], args=["2"]))
    last = asyncio.ensure_future(echo(keys=["c"], args=["3"]))
    await asyncio.sleep(0)  # all three queued in this turn, none sent yet
    dropped.cancel()
    assert await first == ["a", "1"]
    assert await last == ["c", "3"]
    assert dropped.cancelled()
    assert await echo(keys=["d"], args=["4"]) == ["d", "4"]


# Busy for ARGV[1] ms, then counts its run in KEYS[1]: a reply that is late on purpose.
SLOW = """
local started = redis.call('TIME')
local function elapsed_ms()
  local now = redis.call('TIME')
  return (now[1] - started[1]) * 1000 + (now[2] - started[2]) / 1000
end
while elapsed_ms() < tonumber(ARGV[1]) do end
return redis.call('INCR', KEYS[1])
"""


async def test_calls_cut_off_with_their_connection_are_sent_again(
    private_redis: RedisServer,
) -> None:
    """The connection drops while Redis runs the first call of a shared write: every call of
    that write is still answered, on a new connection (at least once, as redis-py retries a
    single command)."""
    async with tcp_proxy(private_redis.url) as proxy:
        client = connect_redis(proxy.url_for(private_redis.url), client_name="batching-cut")
        try:
            slow = client.register_script(SLOW)
            echo = client.register_script(ECHO)
            await asyncio.gather(slow(keys=["warm"], args=["0"]), echo(keys=["k"], args=["v"]))
            calls = asyncio.gather(
                slow(keys=["runs"], args=["600"]),
                echo(keys=["a"], args=["1"]),
                echo(keys=["b"], args=["2"]),
            )
            await asyncio.sleep(0.2)  # sent; Redis is busy with the slow one
            await proxy.cut()
            await proxy.start()
            runs, first, second = await asyncio.wait_for(calls, 30)
            assert (first, second) == (["a", "1"], ["b", "2"])
            assert runs in (1, 2)
        finally:
            await client.aclose()


async def test_calls_fail_with_the_store_error_when_redis_cannot_be_reached() -> None:
    unreachable = connect_redis("redis://127.0.0.1:1/0", client_name="batching-unreachable")
    try:
        script = unreachable.register_script(ECHO)
        results = await asyncio.gather(
            *(script(keys=["k"], args=[str(i)]) for i in range(3)), return_exceptions=True
        )
        assert all(isinstance(result, StoreUnavailableError) for result in results), results
    finally:
        await unreachable.aclose()


async def test_a_blocking_command_keeps_its_own_connection(client: StoreClient) -> None:
    echo = client.register_script(ECHO)
    key = f"batching:{uuid.uuid4().hex}"
    blocked = asyncio.ensure_future(client.blpop([key], timeout=20))
    try:
        await asyncio.sleep(0.1)  # BLPOP is on its connection, waiting
        # Scripts still go through while it waits, and the BLPOP still gets its element.
        replies = await asyncio.wait_for(
            asyncio.gather(*(echo(keys=["k"], args=[str(i)]) for i in range(3))), 10
        )
        assert replies == [["k", str(i)] for i in range(3)]
        assert not blocked.done()
        await client.rpush(key, "item")
        popped = await asyncio.wait_for(blocked, 10)
        assert popped is not None
        assert list(popped) == [key, "item"]
    finally:
        blocked.cancel()
        await client.delete(key)
