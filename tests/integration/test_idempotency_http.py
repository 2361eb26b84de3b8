"""The same Idempotency-Key sent 50 times at once over HTTP (a real uvicorn server, 50
connections) creates exactly one job and one message; every reply names that job."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.http_servers import serving
from ttsqueue.api.app import create_app
from ttsqueue.broker.topology import QueueInspector, QueueNames
from ttsqueue.config import Settings
from ttsqueue.store.factory import build_store

pytestmark = pytest.mark.timeout(60)

SENDS = 50
BODY = {"text": "Su código es 4 8 1 5", "phone_number": "3005050149"}


@pytest.fixture
async def api_url(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> AsyncIterator[str]:
    async with serving(create_app(settings)) as url:
        yield url


async def send_at_once(url: str, bodies: list[dict[str, Any]], key: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=SENDS)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        start = asyncio.Event()

        async def one(body: dict[str, Any]) -> httpx.Response:
            await start.wait()
            return await client.post("/tts/call", json=body, headers={"Idempotency-Key": key})

        sends = [asyncio.create_task(one(body)) for body in bodies]
        await asyncio.sleep(0.05)
        start.set()
        return list(await asyncio.gather(*sends))


async def test_fifty_concurrent_sends_create_one_job(
    api_url: str, settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    replies = await send_at_once(api_url, [BODY] * SENDS, "otp-concurrent-1")
    codes = sorted(reply.status_code for reply in replies)
    assert codes == [200] * (SENDS - 1) + [202]
    assert len({reply.json()["job_id"] for reply in replies}) == 1
    store = build_store(redis_client, settings).jobs
    assert (await store.counts_by_status())[0] == 1
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    inspector = QueueInspector(broker, names)
    try:
        assert (await inspector.depths())["normal"] == 1
    finally:
        await inspector.close()


async def test_same_key_with_different_bodies_at_once_keeps_the_first(
    api_url: str, settings: Settings, redis_client: Any
) -> None:
    bodies = [{**BODY, "text": f"Código {n}"} for n in range(SENDS)]
    replies = await send_at_once(api_url, bodies, "otp-concurrent-2")
    codes = sorted(reply.status_code for reply in replies)
    assert codes == [202] + [409] * (SENDS - 1)
    conflicts = {reply.json()["code"] for reply in replies if reply.status_code == 409}
    assert conflicts == {"idempotency_conflict"}
    store = build_store(redis_client, settings).jobs
    assert (await store.counts_by_status())[0] == 1
