"""API keys and the per-key rate limit (SPEC §2.8) on the real app and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection

from ttsqueue.api.app import create_app
from ttsqueue.config import Settings

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.settings(API_KEYS="key-one,key-two", RATE_LIMIT_PER_MINUTE=60),
]


@pytest.fixture
async def api(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


async def test_health_is_open_everything_else_needs_a_key(api: httpx.AsyncClient) -> None:
    assert (await api.get("/health")).status_code == 200
    for method, path in [
        ("GET", "/tts/jobs"),
        ("GET", "/queue/stats"),
        ("POST", "/tts/call"),
        ("GET", "/docs"),
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
    # 60 a minute with a burst of ten: the eleventh request at once is refused.
    codes = [
        (await api.get("/tts/jobs", headers={"X-API-Key": "key-one"})).status_code
        for _ in range(11)
    ]
    assert codes[:10] == [200] * 10
    assert codes[10] == 429
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
