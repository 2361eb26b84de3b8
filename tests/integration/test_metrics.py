"""`/metrics` after a known run: counters and histograms match what happened."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import in_process_api
from tests.doubles.tcp_proxy import tcp_proxy
from tests.in_process import publish_job, running_worker, terminal, wait_for
from ttsqueue.config import Settings
from ttsqueue.store.factory import build_store

pytestmark = [pytest.mark.timeout(60), pytest.mark.settings(WORKER_CONCURRENCY=4)]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_metrics_count_a_known_run(
    api: httpx.AsyncClient,
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: Any,
) -> None:
    body = {"text": "Hola, prueba de métricas", "phone_number": "3005050149"}
    answered = [(await api.post("/tts/call", json=body)).json()["job_id"] for _ in range(3)]
    high = await api.post("/tts/call", json={**body, "priority": "high"})
    answered.append(high.json()["job_id"])
    canceled = (await api.post("/tts/call", json=body)).json()["job_id"]
    assert (await api.delete(f"/tts/call/{canceled}")).status_code == 200
    store = build_store(redis_client, settings).jobs
    busy = [
        await publish_job(broker, settings, store, phone="3005550001", max_retries=0)
        for _ in range(2)
    ]
    async with running_worker(settings):
        for job_id in answered + busy:
            await wait_for(api, job_id, terminal)
        reply = await api.get("/metrics")
        during = samples(reply.text)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    assert during[("ttsq_workers_alive", ())] == 1
    after = samples((await api.get("/metrics")).text)
    # 4 through the API and 2 created directly in the store, the way the API does.
    assert after[("ttsq_jobs_submitted_total", (("priority", "normal"),))] == 6
    assert after[("ttsq_jobs_submitted_total", (("priority", "high"),))] == 1
    finished = {
        labels: value
        for (name, labels), value in after.items()
        if name == "ttsq_jobs_finished_total"
    }
    assert finished == {
        (("outcome", "answered"), ("status", "completed")): 4,
        (("outcome", "busy"), ("status", "failed")): 2,
        (("outcome", "canceled"), ("status", "canceled")): 1,
    }
    assert after[("ttsq_job_processing_seconds_count", ())] == 6
    assert after[("ttsq_job_end_to_end_seconds_count", ())] == 6
    assert after[("ttsq_job_end_to_end_seconds_bucket", (("le", "+Inf"),))] == 6
    assert after[("ttsq_job_processing_seconds_sum", ())] > 0
    # Two distinct texts were spoken: two syntheses, the other jobs hit the cache.
    assert after[("ttsq_tts_synthesis_seconds_count", (("engine", "espeak"),))] == 2
    assert after[("ttsq_tts_cache_misses_total", ())] == 2
    assert after[("ttsq_tts_cache_hits_total", ())] == 4
    assert after[("ttsq_jobs", (("status", "completed"),))] == 4
    assert after[("ttsq_calls_limit", ())] == settings.MAX_CONCURRENT_CALLS
    assert after[("ttsq_queue_depth", (("queue", "normal"),))] == 0


async def test_metrics_without_the_broker_keep_every_redis_series(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    body = {"text": "Hola", "phone_number": "3005050149"}
    async with tcp_proxy(settings.RABBITMQ_URL) as rabbit:
        through = settings.model_copy(
            update={"RABBITMQ_URL": rabbit.url_for(settings.RABBITMQ_URL)}
        )
        async with in_process_api(through) as api:
            assert (await api.post("/tts/call", json=body)).status_code == 202
            up = samples((await api.get("/metrics")).text)
            await rabbit.cut()  # RabbitMQ is gone: resets, and the port refuses connections
            reply = await api.get("/metrics")
    assert up[("ttsq_broker_up", ())] == 1
    assert up[("ttsq_queue_depth", (("queue", "normal"),))] == 1
    assert reply.status_code == 200, reply.text
    down = samples(reply.text)
    assert down[("ttsq_broker_up", ())] == 0
    assert not [key for key in down if key[0] == "ttsq_queue_depth"]
    # Every series fed from Redis is still there, with its value.
    assert {name for name, _ in up} - {"ttsq_queue_depth"} == {name for name, _ in down}
    assert down[("ttsq_jobs_submitted_total", (("priority", "normal"),))] == 1
    assert down[("ttsq_jobs", (("status", "queued"),))] == 1
    assert down[("ttsq_calls_limit", ())] == settings.MAX_CONCURRENT_CALLS
    assert down[("ttsq_workers_alive", ())] == 0


async def test_metrics_without_redis_are_503(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    async with (
        tcp_proxy(settings.RABBITMQ_URL) as rabbit,
        tcp_proxy(settings.REDIS_URL) as redis,
    ):
        through = settings.model_copy(
            update={
                "RABBITMQ_URL": rabbit.url_for(settings.RABBITMQ_URL),
                "REDIS_URL": redis.url_for(settings.REDIS_URL),
            }
        )
        async with in_process_api(through) as api:
            assert (await api.get("/metrics")).status_code == 200
            await redis.cut()
            redis_down = await api.get("/metrics")
            await rabbit.cut()
            both_down = await api.get("/metrics")
    for reply in (redis_down, both_down):
        assert reply.status_code == 503, reply.text
        assert reply.json()["code"] == "service_unavailable"
        assert "Redis" in reply.json()["error"]
        assert int(reply.headers["retry-after"]) > 0


async def metric(api: httpx.AsyncClient, name: str) -> float:
    return samples((await api.get("/metrics")).text)[(name, ())]


async def until_metric(api: httpx.AsyncClient, name: str, value: float) -> None:
    deadline = time.monotonic() + 30
    seen = await metric(api, name)
    while seen != value and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        seen = await metric(api, name)
    assert seen == value, f"{name} is {seen}, not {value}"


@pytest.mark.settings(
    TTS_ENGINE="gtts",
    TTS_FALLBACK_ENGINE="espeak",
    GTTS_TIMEOUT=0.5,
    GTTS_BREAKER_THRESHOLD=1,
    GTTS_BREAKER_COOLDOWN=300,
)
async def test_workers_whose_speech_breaker_is_open_are_counted(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    """Google is unreachable from here: the worker's first gTTS call fails, its breaker opens
    (the job is spoken by espeak-ng) and its heartbeat carries that to every API process."""
    assert await metric(api, "ttsq_tts_breaker_open") == 0
    async with running_worker(settings):
        await until_metric(api, "ttsq_workers_alive", 1)
        assert await metric(api, "ttsq_tts_breaker_open") == 0
        body = {"text": "Aviso con Google caído", "phone_number": "3005050149"}
        job_id = (await api.post("/tts/call", json=body)).json()["job_id"]
        record = await wait_for(api, job_id, terminal)
        assert (record["status"], record["audio"]["engine"]) == ("completed", "espeak")
        await until_metric(api, "ttsq_tts_breaker_open", 1)
    await until_metric(api, "ttsq_workers_alive", 0)
    assert await metric(api, "ttsq_tts_breaker_open") == 0  # a gone worker counts no more
