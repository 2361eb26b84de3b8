"""API keys and the per-key rate limit (SPEC §2.8) on the real app and Redis."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.conftest import in_process_api
from tests.doubles.tcp_proxy import tcp_proxy
from ttsqueue.config import Settings

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.settings(API_KEYS="key-one,key-two", RATE_LIMIT_PER_MINUTE=60),
]


async def test_health_and_docs_are_open_everything_else_needs_a_key(
    api: httpx.AsyncClient,
) -> None:
    # The docs describe the API and hold no data; a browser cannot send a key to open them.
    for path in ("/health", "/docs", "/redoc", "/openapi.json", "/docs-assets/swagger-ui.css"):
        assert (await api.get(path)).status_code == 200, path
    for method, path in [
        ("GET", "/tts/jobs"),
        ("GET", "/queue/stats"),
        ("POST", "/tts/call"),
        ("GET", "/docsx"),
        ("GET", "/docs-assets"),
    ]:
        reply = await api.request(method, path)
        assert reply.status_code == 401, path
        assert reply.json()["code"] == "unauthorized"
        assert reply.headers["www-authenticate"] == "Bearer"


async def test_bearer_and_x_api_key_are_accepted(api: httpx.AsyncClient) -> None:
    bearer = await api.get("/tts/jobs", headers={"Authorization": "Bearer key-one"})
    header = await api.get("/tts/jobs", headers={"X-API-Key": "key-two"})
    wrong = await api.get("/tts/jobs", headers={"Authorization": "Bearer key-three"})
    assert (bearer.status_code, header.status_code, wrong.status_code) == (200, 200, 401)


async def test_each_key_has_its_own_rate_limit(api: httpx.AsyncClient) -> None:
    # 60 a minute, a burst of 60 included: the 61st request at once is refused.
    codes = [
        (await api.get("/tts/jobs", headers={"X-API-Key": "key-one"})).status_code
        for _ in range(61)
    ]
    assert codes[:60] == [200] * 60
    assert codes[60] == 429
    limited = await api.get("/tts/jobs", headers={"X-API-Key": "key-one"})
    assert limited.json()["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    other = await api.get("/tts/jobs", headers={"X-API-Key": "key-two"})
    assert other.status_code == 200


async def test_idempotency_keys_are_scoped_per_api_key(api: httpx.AsyncClient) -> None:
    body = {"text": "Hola", "phone_number": "3005050149"}
    one = await api.post(
        "/tts/call", json=body, headers={"X-API-Key": "key-one", "Idempotency-Key": "same"}
    )
    two = await api.post(
        "/tts/call", json=body, headers={"X-API-Key": "key-two", "Idempotency-Key": "same"}
    )
    assert (one.status_code, two.status_code) == (202, 202)
    assert one.json()["job_id"] != two.json()["job_id"]


async def until_limited(api: httpx.AsyncClient, key: dict[str, str]) -> list[int]:
    """Statuses of reads made in a row until one is rate limited (for at most 20 s)."""
    statuses: list[int] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and 429 not in statuses:
        statuses.append((await api.get("/tts/jobs", headers=key)).status_code)
    return statuses


async def test_without_redis_reads_pass_unlimited_and_writes_get_503(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    key = {"X-API-Key": "key-one"}
    body = {"text": "Hola", "phone_number": "3005050149"}
    async with tcp_proxy(settings.REDIS_URL) as redis:
        through = settings.model_copy(update={"REDIS_URL": redis.url_for(settings.REDIS_URL)})
        async with in_process_api(through) as api:
            assert (await api.get("/tts/jobs", headers=key)).status_code == 200
            await redis.cut()
            # More than the minute's 60, none limited: the limiter fails open for reads.
            docs = [(await api.get("/openapi.json", headers=key)).status_code for _ in range(70)]
            jobs = await api.get("/tts/jobs", headers=key)
            submit = await api.post("/tts/call", json=body, headers=key)
            cancel = await api.delete(f"/tts/call/{'0' * 32}", headers=key)
            anonymous = await api.post("/tts/call", json=body)
            await redis.start()
            back = await until_limited(api, key)
    assert docs == [200] * 70
    assert anonymous.status_code == 401  # keys are checked without Redis
    for reply in (jobs, submit, cancel):
        assert reply.status_code == 503, reply.text
        assert reply.json()["code"] == "service_unavailable"
        assert "Redis" in reply.json()["error"]
        assert int(reply.headers["retry-after"]) > 0
    # Redis is back: the limit holds again.
    assert back[-1] == 429
    assert set(back) <= {200, 429}


async def test_a_batch_counts_as_its_number_of_items(api: httpx.AsyncClient) -> None:
    key = {"X-API-Key": "key-one"}
    call = {"text": "Hola", "phone_number": "3005050149"}
    first = await api.post("/tts/calls", json={"calls": [call] * 50}, headers=key)
    assert first.status_code == 202
    # 50 of the minute's 60 are spent: a batch of 11 does not fit, one of 10 does.
    refused = await api.post("/tts/calls", json={"calls": [call] * 11}, headers=key)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    fits = await api.post("/tts/calls", json={"calls": [call] * 9}, headers=key)
    assert fits.status_code == 202
    assert (await api.get("/tts/jobs", headers=key)).status_code == 429
    too_big = await api.post(
        "/tts/calls", json={"calls": [call] * 61}, headers={"X-API-Key": "key-two"}
    )
    assert too_big.status_code == 429
    assert "split it" in too_big.json()["error"]
