"""Back-pressure (SPEC §2.8): once the backlog exceeds MAX_QUEUE_DEPTH waiting messages,
submissions get 503 with Retry-After and create nothing; at the bound they are still accepted,
and once the backlog is back under it, accepted again."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
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

    async def depths(self) -> dict[str, int]:
        self.reads += 1
        return await super().depths()


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
