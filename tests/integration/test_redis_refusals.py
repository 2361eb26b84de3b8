"""Redis refusing writes for a while (OOM, READONLY after a failover) on a private server:
the AMI call tracker keeps every fact, in order, until Redis takes it (its buffer bounded by
count, not time), and a trunk lease's keep-alive outlives the refusals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from tests.faults.servers import RedisServer
from tests.ports import free_port
from ttsqueue.dialer.ami.call_records import CallRecords
from ttsqueue.dialer.ami.protocol import AmiMessage
from ttsqueue.dialer.ami.tracker import CallTracker
from ttsqueue.store.connection import connect_redis
from ttsqueue.store.keys import Keys
from ttsqueue.supervised import keep_running
from ttsqueue.worker.trunk import TrunkGuard

pytestmark = pytest.mark.timeout(90)

KEYS = Keys("ttsqrefusal:")
CALL_ID = "0123456789abcdef0123456789abcdef01"


@pytest.fixture
async def client(private_redis: RedisServer) -> AsyncIterator[aioredis.Redis]:
    redis = connect_redis(private_redis.url, client_name="pytest-refusals")
    try:
        yield redis
    finally:
        await redis.aclose()


async def refuse_writes(admin: aioredis.Redis, how: str) -> None:
    if how == "oom":
        await admin.config_set("maxmemory-policy", "noeviction")
        await admin.config_set("maxmemory", "1")
    else:  # a replica of a master that is not there: READONLY for every write
        await admin.execute_command(  # type: ignore[no-untyped-call]
            "REPLICAOF", "127.0.0.1", str(free_port())
        )


async def accept_writes(admin: aioredis.Redis, how: str) -> None:
    if how == "oom":
        await admin.config_set("maxmemory", "0")
    else:
        await admin.execute_command("REPLICAOF", "NO", "ONE")  # type: ignore[no-untyped-call]


def event(*headers: tuple[str, str]) -> AmiMessage:
    return AmiMessage((("Event", headers[0][1]), *headers[1:]))


@pytest.mark.parametrize("how", ["oom", "readonly"])
async def test_call_facts_wait_for_redis_instead_of_being_lost(
    private_redis: RedisServer, client: aioredis.Redis, how: str
) -> None:
    records = CallRecords(client, KEYS, 3600)
    await records.create(CALL_ID, {"originated_at": "1.000"})
    tracker = CallTracker(records)
    task = asyncio.create_task(keep_running("tracker", tracker.run, pause_s=0.1))
    try:
        await refuse_writes(client, how)
        tracker.on_event(event(("Event", "Newstate"), ("Uniqueid", CALL_ID), ("ChannelState", "6")))
        tracker.on_event(event(("Event", "Hangup"), ("Uniqueid", CALL_ID), ("Cause", "16")))
        await asyncio.sleep(6)  # longer than any retry budget counted in time
        assert tracker.pending() == 2
        assert "cause" not in await client.hgetall(KEYS.call_record(CALL_ID))
        await accept_writes(client, how)
        for _ in range(400):
            if not tracker.pending():
                break
            await asyncio.sleep(0.05)
        record = await client.hgetall(KEYS.call_record(CALL_ID))
        assert (record["cause"], "up_at" in record) == ("16", True)
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_buffer_is_bounded_by_count(client: aioredis.Redis) -> None:
    tracker = CallTracker(CallRecords(client, KEYS, 3600), max_pending=3)
    for cause in range(5):
        tracker.on_event(event(("Event", "Hangup"), ("Uniqueid", CALL_ID), ("Cause", str(cause))))
    assert (tracker.pending(), tracker.dropped) == (3, 2)


@pytest.mark.parametrize("how", ["oom", "readonly"])
async def test_a_lease_keep_alive_outlives_refused_writes(client: aioredis.Redis, how: str) -> None:
    guard = TrunkGuard(client, KEYS, max_calls=2, calls_per_second=100, lease_s=0.6)
    async with guard.slot("call-1") as lease:
        await refuse_writes(client, how)
        await asyncio.sleep(1.0)  # renewals refused
        await accept_writes(client, how)
        await asyncio.sleep(0.2)
        # Renewed again after the refusals: still held well past its 0.6 s lease.
        for _ in range(4):
            await asyncio.sleep(0.4)
            assert await guard.active() == 1
        assert not lease.lost
