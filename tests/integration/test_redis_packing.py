"""Commands packed by hiredis: the same bytes as redis-py's packer, values that reach real Redis
intact, and what hiredis does not take still packed, or refused, as redis-py always did."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import DataError

from tests.conftest import REDIS_URL
from ttsqueue.errors import StoreError
from ttsqueue.store.connection import StoreClient, connect_redis
from ttsqueue.store.packing import HiredisPacking, packed_by_hiredis

pytestmark = pytest.mark.timeout(60)

VALUES: list[Any] = [
    "plain",
    "ñandú ☎ llamada",
    "with spaces and\r\nCRLF",
    "",
    b"\x00\xff bytes",
    0,
    -(2**63),
    2**70,
    0.1 + 0.2,
    -0.0,
    1e-300,
    float("inf"),
]


@pytest.fixture
async def client() -> AsyncIterator[StoreClient]:
    made = connect_redis(REDIS_URL, client_name="packing-test")
    yield made
    await made.aclose()


def test_the_bytes_are_redis_pys_own() -> None:
    ours = packed_by_hiredis(Connection)()
    theirs = Connection()
    commands: list[tuple[Any, ...]] = [
        ("SET", "key", *VALUES),
        ("CLIENT SETNAME", "name"),  # a subcommand in the name: sent as two arguments
        (b"CONFIG GET", b"maxmemory"),
        ("EVALSHA", "a" * 40, 3, "k1", "k2", "k3", *[f"field-{i}" for i in range(70)]),
    ]
    for command in commands:
        assert b"".join(ours.pack_command(*command)) == b"".join(theirs.pack_command(*command))
    assert b"".join(ours.pack_commands(commands)) == b"".join(theirs.pack_commands(commands))


def test_one_subclass_per_connection_class() -> None:
    tcp: type[Any] = packed_by_hiredis(Connection)
    assert packed_by_hiredis(Connection) is tcp
    assert packed_by_hiredis(tcp) is tcp
    assert tcp.__mro__[1:3] == (HiredisPacking, Connection)
    unix: type[Any] = packed_by_hiredis(UnixDomainSocketConnection)
    assert unix.__mro__[1:3] == (HiredisPacking, UnixDomainSocketConnection)


def test_what_hiredis_does_not_take_is_left_to_redis_py() -> None:
    ours = packed_by_hiredis(Connection)()
    view = memoryview(b"a memoryview")
    assert b"".join(ours.pack_command("SET", "k", view)) == b"".join(
        Connection().pack_command("SET", "k", view)
    )
    refusals: list[Any] = [None, True, object()]
    for refused in refusals:
        with pytest.raises(DataError):
            ours.pack_command("SET", "k", refused)


async def test_the_store_client_packs_with_hiredis(client: StoreClient) -> None:
    connection: Any = await client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        assert isinstance(connection, Connection)
        assert isinstance(connection, HiredisPacking)
    finally:
        await client.connection_pool.release(connection)


async def test_values_reach_redis_intact(client: StoreClient) -> None:
    key = f"packing:{uuid.uuid4().hex}"
    fields: dict[Any, Any] = {
        f"f{i}": value for i, value in enumerate(VALUES) if not isinstance(value, bytes)
    }
    try:
        await client.hset(key, mapping=fields)
        stored = await client.hgetall(key)
        expected = {
            name: value if isinstance(value, str) else repr(value) for name, value in fields.items()
        }
        assert stored == expected
        # Script calls, which go through the batcher's shared write.
        echo = client.register_script("return ARGV")
        assert await echo(args=["ñandú", 7, 2.5]) == ["ñandú", "7", "2.5"]
    finally:
        await client.delete(key)


async def test_a_value_redis_cannot_take_is_the_stores_error(client: StoreClient) -> None:
    with pytest.raises(StoreError):
        await client.set(f"packing:{uuid.uuid4().hex}", None)  # type: ignore[arg-type]
