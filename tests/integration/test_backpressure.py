"""Back-pressure (SPEC §2.8): once the backlog exceeds MAX_QUEUE_DEPTH waiting messages,
submissions get 503 with Retry-After and create nothing; at the bound they are still accepted,
and once the backlog is back under it, accepted again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from typing import Any

import httpx
import pytest
from aio_pika import Message
from aio_pika.abc import AbstractRobustConnection

from ttsqueue.api.backpressure import BacklogGate
from ttsqueue.broker.topology import QueueInspector, QueueNames
from ttsqueue.config import Settings
from ttsqueue.store.factory import build_store

pytestmark = [pytest.mark.timeout(60), pytest.mark.settings(MAX_QUEUE_DEPTH=5)]

BODY = {"text": "Aviso", "phone_number": "3005050149"}


async def until_accepted(api: httpx.AsyncClient) -> httpx.Response:
    """The backlog is read at most once a second: poll until the gate has seen it shrink."""
    deadline = time.monotonic() + 10
    while True:
        reply = await api.post("/tts/call", json=BODY)
        if reply.status_code != 503 or time.monotonic() > deadline:
            return reply
        await asyncio.sleep(0.2)


async def test_full_backlog_is_refused_with_retry_after(
    api: httpx.AsyncClient,
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: Any,
) -> None:
    for _ in range(5):
        assert (await api.post("/tts/call", json=BODY)).status_code == 202
    await asyncio.sleep(1.1)  # past the gate's one-second cache of the depth
    # A backlog of exactly MAX_QUEUE_DEPTH does not exceed it: one more is accepted.
    assert (await api.post("/tts/call", json=BODY)).status_code == 202
    await asyncio.sleep(1.1)
    # Now 6 > 5: refused.
    refused = await api.post("/tts/call", json=BODY)
    assert refused.status_code == 503
    assert refused.json()["code"] == "queue_full"
    assert "MAX_QUEUE_DEPTH" in refused.json()["error"]
    assert int(refused.headers["retry-after"]) > 0
    batch = await api.post("/tts/calls", json={"calls": [BODY, BODY]})
    assert batch.status_code == 503
    assert batch.json()["code"] == "queue_full"
    store = build_store(redis_client, settings).jobs
    assert (await store.counts_by_status())[0] == 6

    channel = await broker.channel()
    queue = await channel.get_queue(QueueNames.from_prefix(settings.QUEUE_PREFIX).calls)
    await queue.purge()
    assert (await until_accepted(api)).status_code == 202


class CountingInspector(QueueInspector):
    """The real inspector on the real broker, counting how often it is asked."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.reads = 0

    async def depths(self, labels: Collection[str] | None = None) -> dict[str, int]:
        self.reads += 1
        return await super().depths(labels)


async def test_a_burst_of_requests_shares_one_backlog_read(
    settings: Settings, broker: AbstractRobustConnection
) -> None:
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    inspector = CountingInspector(broker, names)
    gate = BacklogGate(inspector, settings.MAX_QUEUE_DEPTH)
    try:
        assert set(await asyncio.gather(*(gate.backlog() for _ in range(200)))) == {0}
        assert inspector.reads == 1
        assert await gate.backlog() == 0  # fresh: no read at all
        assert inspector.reads == 1
        await asyncio.sleep(1.05)
        await asyncio.gather(*(gate.backlog() for _ in range(200)))
        assert inspector.reads == 2
    finally:
        await inspector.close()


class HeldInspector(CountingInspector):
    """Counts its reads, each of which waits until `release` is set."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.release = asyncio.Event()
        self.release.set()

    async def depths(self, labels: Collection[str] | None = None) -> dict[str, int]:
        self.reads += 1
        await self.release.wait()
        return await QueueInspector.depths(self, labels)


async def test_steady_traffic_never_waits_for_a_backlog_read(
    settings: Settings, broker: AbstractRobustConnection
) -> None:
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    inspector = HeldInspector(broker, names)
    now = 100.0
    gate = BacklogGate(inspector, settings.MAX_QUEUE_DEPTH, clock=lambda: now)
    try:
        assert await gate.backlog() == 0  # nothing read yet: waits for the first read
        assert inspector.reads == 1
        channel = await broker.channel()
        for _ in range(3):
            await channel.default_exchange.publish(Message(b"{}"), routing_key=names.calls)
        now += 0.4  # fresh: no read
        assert await gate.backlog() == 0
        assert inspector.reads == 1
        # Half a second old: a read starts, and the caller is not held by it.
        inspector.release.clear()
        now += 0.2
        assert await asyncio.wait_for(gate.backlog(), 1.0) == 0
        assert inspector.reads == 2
        # Callers meanwhile share that read instead of starting others.
        assert await asyncio.wait_for(gate.backlog(), 1.0) == 0
        assert inspector.reads == 2
        inspector.release.set()
        deadline = time.monotonic() + 10
        while await gate.backlog() != 3:
            assert time.monotonic() < deadline, "the background read never landed"
            await asyncio.sleep(0.02)
        assert inspector.reads == 2
        # A second old (no traffic in between): the caller waits for the new read.
        now += 1.0
        inspector.release.clear()
        waiting = asyncio.ensure_future(gate.backlog())
        await asyncio.sleep(0.1)
        assert not waiting.done()
        inspector.release.set()
        assert await asyncio.wait_for(waiting, 5.0) == 3
        assert inspector.reads == 3
    finally:
        inspector.release.set()
        await inspector.close()


class LabelRecordingInspector(QueueInspector):
    """The real inspector, recording which queues each read asked for."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.asked: list[set[str]] = []

    async def counts(self, labels: Collection[str] | None = None) -> dict[str, tuple[int, int]]:
        counts = await super().counts(labels)
        self.asked.append(set(counts))
        return counts


async def test_the_gate_reads_only_the_queues_that_make_the_backlog(
    settings: Settings, broker: AbstractRobustConnection
) -> None:
    """Audit copies (results) and dead letters are not backlog: they are neither read nor
    counted, however many there are."""
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    inspector = LabelRecordingInspector(broker, names)
    gate = BacklogGate(inspector, settings.MAX_QUEUE_DEPTH)
    channel = await broker.channel()
    try:
        for queue in (names.results, names.dead, names.dead, names.calls, names.priority):
            await channel.default_exchange.publish(Message(b"{}"), routing_key=queue)
        assert await gate.backlog() == 2
        assert inspector.asked == [{"normal", "priority", "retry", "hold"}]
        everything = await inspector.depths()
        assert set(everything) == set(names.by_label())
        assert (everything["results"], everything["dead"]) == (1, 2)  # there, not counted
    finally:
        await channel.close()
        await inspector.close()
