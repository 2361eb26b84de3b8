"""`POST /tts/call` served before FastAPI's router (api/call_lane.py): which requests the lane
takes, what it leaves to the route byte for byte, and that both give the same answers."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection
from starlette.types import Receive, Scope, Send

from tests.integration.test_broker import get_one, names_of
from ttsqueue.api.app import create_app
from ttsqueue.api.call_lane import CallLane
from ttsqueue.api.context import context_of_app
from ttsqueue.config import Settings
from ttsqueue.domain import JobMessage
from ttsqueue.store.factory import build_store
from ttsqueue.store.keys import Keys

pytestmark = pytest.mark.timeout(60)

CALL = {"text": "Hola, prueba del carril", "phone_number": "3005050149"}
JSON = {"content-type": "application/json"}
# Parsed as JSON by FastAPI's route, not taken by the lane.
MERGE_PATCH = {"content-type": "application/merge-patch+json"}


class Behind:
    """What sits behind the lane in this test: records each request it gets, answers 299."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        self.seen.append((scope["method"], scope["path"], message.get("body", b"")))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@contextlib.asynccontextmanager
async def lane_client(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Behind]]:
    """A CallLane over a recording app, using the real API's context (its lifespan run)."""
    app = create_app(settings)
    behind = Behind()
    lane = CallLane(behind, context=lambda: context_of_app(app))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=lane)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client, behind


async def test_a_valid_call_is_accepted_by_the_lane_and_recorded_and_queued(
    settings: Settings, broker: AbstractRobustConnection, redis_client: aioredis.Redis
) -> None:
    async with lane_client(settings) as (client, behind):
        reply = await client.post(
            "/tts/call",
            content=json.dumps(CALL),
            headers={"content-type": "Application/JSON; charset=utf-8"},
        )
    assert reply.status_code == 202, reply.text
    assert behind.seen == []
    job_id = reply.json()["job_id"]
    assert reply.json()["status"] == "queued"
    job = await build_store(redis_client, settings).jobs.get(job_id)
    assert job is not None
    assert (job.text, job.e164) == (CALL["text"], "+573005050149")
    message = await get_one(broker, names_of(settings).calls)
    assert JobMessage.decode(message.body).job_id == job_id


@pytest.mark.parametrize(
    ("method", "path", "headers", "body"),
    [
        ("POST", "/tts/call", JSON, b'{"text": "Hola", "telefono": "3005050149"}'),
        ("POST", "/tts/call", JSON, b'{"text": "Hola", "phone_number": '),
        ("POST", "/tts/call", JSON, b""),
        ("POST", "/tts/call", {"content-type": "text/plain"}, json.dumps(CALL).encode()),
        ("POST", "/tts/call", {}, json.dumps(CALL).encode()),
        ("POST", "/tts/call", {"content-type": "application/json-x"}, json.dumps(CALL).encode()),
        ("POST", "/tts/call", MERGE_PATCH, json.dumps(CALL).encode()),
        ("POST", "/tts/calls", JSON, json.dumps({"calls": [CALL]}).encode()),
        ("POST", "/tts/call/", JSON, json.dumps(CALL).encode()),
        ("PUT", "/tts/call", JSON, json.dumps(CALL).encode()),
    ],
    ids=[
        "unknown-field",
        "malformed",
        "empty",
        "text-plain",
        "no-content-type",
        "other-media-type",
        "json-suffix",
        "batch-route",
        "trailing-slash",
        "put",
    ],
)
async def test_what_the_lane_does_not_take_reaches_the_app_unchanged(
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: aioredis.Redis,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
) -> None:
    async with lane_client(settings) as (client, behind):
        reply = await client.request(method, path, content=body, headers=headers)
    assert reply.status_code == 299
    assert behind.seen == [(method, path, body)]
    records = Keys(settings.REDIS_PREFIX).job("*")
    assert [key async for key in redis_client.scan_iter(match=records)] == []


# Bodies answered by the lane (valid JSON calls, some refused by the settings' rules) and by
# the route (invalid ones); the same body sent as `application/merge-patch+json` is parsed as
# JSON by FastAPI's route but not taken by the lane.
SAME_ANSWER_BODIES = [
    CALL,
    {**CALL, "priority": "high", "max_retries": 2, "metadata": {"ticket": 7}},
    {**CALL, "send_at": "2020-01-01T00:00:00+00:00"},
    {**CALL, "phone_number": "12"},
    {**CALL, "language": "xx"},
    {**CALL, "max_retries": 2.0},
    {**CALL, "send_at": 1700000000},
    {**CALL, "text": "   "},
    {**CALL, "prioridad": "high"},
]
VOLATILE = {"job_id", "timestamp", "links"}


def comparable(reply: httpx.Response) -> tuple[int, dict[str, Any], str]:
    body = {k: v for k, v in reply.json().items() if k not in VOLATILE}
    return reply.status_code, body, reply.headers["content-type"]


async def test_the_lane_and_the_route_give_the_same_answers(api: httpx.AsyncClient) -> None:
    for body in SAME_ANSWER_BODIES:
        raw = json.dumps(body).encode()
        through_lane = await api.post("/tts/call", content=raw, headers=JSON)
        through_route = await api.post("/tts/call", content=raw, headers=MERGE_PATCH)
        assert comparable(through_lane) == comparable(through_route), body
    statuses = [
        (await api.post("/tts/call", content=json.dumps(b).encode(), headers=JSON)).status_code
        for b in SAME_ANSWER_BODIES
    ]
    # The list covers accepted calls and both kinds of refusal.
    assert statuses == [202, 202, 202, 422, 422, 422, 422, 422, 422]


async def test_an_idempotent_repeat_through_the_lane_gets_the_original_job(
    api: httpx.AsyncClient,
) -> None:
    headers = {**JSON, "Idempotency-Key": "lane-1"}
    first = await api.post("/tts/call", content=json.dumps(CALL), headers=headers)
    again = await api.post("/tts/call", content=json.dumps(CALL), headers=headers)
    other = await api.post(
        "/tts/call", content=json.dumps({**CALL, "text": "otro"}), headers=headers
    )
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["job_id"] == first.json()["job_id"]
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"
