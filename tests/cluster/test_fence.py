"""The Redis facts the fence (store/fence.py) rests on, on a real master, two replicas and
three Sentinels: after `SENTINEL FAILOVER` the old master still takes writes, those writes
are erased when the Sentinels turn it into a replica, and the fence says so for writes
stamped before the switch, and holds again once it has settled on the new master."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis.asyncio as aioredis

from tests.cluster.redis_sentinel import MASTER_NAME, SentinelGroup
from ttsqueue.store.connection import connect_sentinel_master
from ttsqueue.store.fence import MasterFence

pytestmark = pytest.mark.timeout(120)


async def _role(port: int) -> str:
    client = aioredis.Redis(port=port, decode_responses=True)
    try:
        reply = await client.execute_command("ROLE")  # type: ignore[no-untyped-call]
        return str(reply[0])
    finally:
        await client.aclose()


async def test_a_write_to_the_old_master_is_erased_and_the_fence_sees_it(
    sentinel_group: SentinelGroup,
) -> None:
    client = connect_sentinel_master(
        [("127.0.0.1", s.port) for s in sentinel_group.sentinels],
        MASTER_NAME,
        url="redis://127.0.0.1/0",
        client_name="pytest-fence",
    )
    key = f"ttsq-fence-test:{uuid.uuid4().hex}"
    old = sentinel_group.current_master()
    direct = aioredis.Redis(port=old.port, decode_responses=True)
    try:
        # On both replicas before the failover (replication is asynchronous: a replica promoted
        # before the write reached it would not have it, whatever the fence does).
        async with client.pipeline(transaction=False) as pipe:
            pipe.set(f"{key}:before", "1")
            pipe.execute_command("WAIT", 2, 10_000)
            assert (await pipe.execute())[1] == 2
        fence = MasterFence(client)
        stamp = fence.stamp()
        assert stamp.address == ("127.0.0.1", old.port)
        assert await fence.holds(stamp)

        new = await asyncio.to_thread(sentinel_group.failover)
        # The replica is promoted; the old master still answers as one and takes the write.
        assert await _role(old.port) == "master"
        assert await direct.set(f"{key}:lost", "1")
        assert not await fence.holds(stamp)

        settled = await fence.settle()
        assert settled.address == ("127.0.0.1", new.port)
        assert await fence.holds(settled)
        await client.set(f"{key}:after", "1")

        # The Sentinels turn the old master into a replica (seconds later): the write is gone.
        deadline = time.monotonic() + 60
        while await _role(old.port) != "slave":
            assert time.monotonic() < deadline, "the old master was not converted"
            await asyncio.sleep(0.2)
        await asyncio.to_thread(sentinel_group.wait_synced)
        assert await client.get(f"{key}:lost") is None
        assert await client.get(f"{key}:before") == "1"
        assert await client.get(f"{key}:after") == "1"
    finally:
        await client.delete(f"{key}:before", f"{key}:after", f"{key}:lost")
        await direct.aclose()
        await client.aclose()
