"""The AMI call tracker writes the facts waiting for Redis together, in order, on real Redis:
a backlog of events costs a round trip per batch, not per fact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence

import pytest
import redis.asyncio as aioredis

from tests.conftest import REDIS_URL, wipe_prefix
from tests.in_process import eventually
from ttsqueue.dialer.ami.call_records import CallRecords
from ttsqueue.dialer.ami.protocol import AmiMessage
from ttsqueue.dialer.ami.tracker import WRITE_BATCH, CallTracker
from ttsqueue.store.connection import connect_redis
from ttsqueue.store.keys import Keys

pytestmark = pytest.mark.timeout(60)


class CountedRecords(CallRecords):
    """The real records, counting the batches written."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, ttl_s: int) -> None:
        super().__init__(redis, keys, ttl_s)
        self.batches: list[int] = []

    async def record_many(self, batch: Sequence[tuple[str, Mapping[str, str]]]) -> None:
        self.batches.append(len(batch))
        await super().record_many(batch)


@pytest.fixture
async def client() -> AsyncIterator[aioredis.Redis]:
    redis = connect_redis(REDIS_URL, client_name="pytest-tracker-batches")
    yield redis
    await wipe_prefix(redis, KEYS.prefix)
    await redis.aclose()


KEYS = Keys("ttsqtrackerbatch:")


def call_id(n: int) -> str:
    return f"{n:032x}01"


def hangup(call: str, cause: str) -> AmiMessage:
    return AmiMessage((("Event", "Hangup"), ("Uniqueid", call), ("Cause", cause)))


def originate_failed(call: str, reason: str) -> AmiMessage:
    return AmiMessage(
        (("Event", "OriginateResponse"), ("Uniqueid", call), ("Response", "Failure"),
         ("Reason", reason))
    )  # fmt: skip


async def written(tracker: CallTracker) -> None:
    """Run the tracker until no fact waits any more, then stop it."""

    async def nothing_pending() -> bool:
        return tracker.pending() == 0

    task = asyncio.create_task(tracker.run())
    try:
        await eventually(nothing_pending, 30, "the facts written")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_backlog_is_written_a_batch_per_round_trip(client: aioredis.Redis) -> None:
    records = CountedRecords(client, KEYS, 3600)
    calls = [call_id(n) for n in range(300)]
    for call in calls:
        await records.create(call, {"originated_at": "1.000"})
    tracker = CallTracker(records)
    # 600 facts waiting before the tracker writes any: a Hangup, then its OriginateResponse.
    for call in calls:
        tracker.on_event(hangup(call, "34"))
        tracker.on_event(originate_failed(call, "8"))
    await written(tracker)
    assert records.batches == [WRITE_BATCH, WRITE_BATCH, 600 - 2 * WRITE_BATCH]
    for call in calls:
        record = await records.read(call)
        assert (record["cause"], record["response"], record["reason"]) == ("34", "Failure", "8")


async def test_facts_of_one_batch_keep_their_order(client: aioredis.Redis) -> None:
    records = CallRecords(client, KEYS, 3600)
    call = call_id(1)
    await records.create(call, {"originated_at": "1.000"})
    tracker = CallTracker(records)
    # First seen wins: both in one batch, the first one's cause stays.
    tracker.on_event(hangup(call, "17"))
    tracker.on_event(hangup(call, "16"))
    await written(tracker)
    assert (await records.read(call))["cause"] == "17"


class BrokenBatches(CallRecords):
    """The real records, whose batch write fails as a bug would (not Redis refusing)."""

    async def record_many(self, batch: Sequence[tuple[str, Mapping[str, str]]]) -> None:
        raise RuntimeError("a batch this client cannot send")


async def test_a_batch_failing_for_another_reason_is_written_fact_by_fact(
    client: aioredis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    records = BrokenBatches(client, KEYS, 3600)
    call = call_id(1)
    await records.create(call, {"originated_at": "1.000"})
    tracker = CallTracker(records)
    tracker.on_event(hangup(call, "16"))
    tracker.on_event(originate_failed(call, "5"))
    await written(tracker)
    record = await records.read(call)
    assert (record["cause"], record["reason"]) == ("16", "5")
    captured = capsys.readouterr()
    assert "call facts batch not sent, written one by one" in captured.out + captured.err
