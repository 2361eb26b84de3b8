"""A broker that drops packets (connections open, nothing answered) behind a TCP proxy: every
broker operation on the API's request path has a deadline, so a submission, a batch and the
queue statistics get their 503 within 5 s instead of hanging."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.conftest import in_process_api
from tests.doubles.tcp_proxy import tcp_proxy
from ttsqueue.config import Settings

pytestmark = pytest.mark.timeout(90)

CALL = {"text": "Hola", "phone_number": "3005050149"}
# The promise is 5 s; the margin is for a loaded machine, and far below the old hang.
BOUND_S = 8.0


async def timed(api: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> tuple[int, float]:
    began = time.monotonic()
    reply = await api.request(method, path, timeout=60, **kwargs)
    return reply.status_code, time.monotonic() - began


async def test_a_broker_dropping_packets_gets_503_not_a_hang(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    async with tcp_proxy(settings.RABBITMQ_URL) as rabbit:
        through = settings.model_copy(
            update={"RABBITMQ_URL": rabbit.url_for(settings.RABBITMQ_URL)}
        )
        async with in_process_api(through) as api:
            assert (await api.post("/tts/call", json=CALL)).status_code == 202
            rabbit.blackhole()
            single = await timed(api, "POST", "/tts/call", json=CALL)
            batch = await timed(api, "POST", "/tts/calls", json={"calls": [CALL, CALL]})
            stats = await timed(api, "GET", "/queue/stats")
    for status, elapsed in (single, batch, stats):
        assert status == 503
        assert elapsed < BOUND_S, elapsed
