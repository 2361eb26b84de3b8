"""A call sent in another media type than JSON gets 415 naming `Content-Type`, and nothing
is recorded or queued; JSON types (with or without parameters, `+json`) go on."""

from __future__ import annotations

import json

import httpx
import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection

from tests.integration.test_broker import names_of
from ttsqueue.api.media import is_json_media_type
from ttsqueue.config import Settings
from ttsqueue.store.factory import build_store
from ttsqueue.store.keys import Keys

pytestmark = pytest.mark.timeout(60)

CALL = {"text": "Hola", "phone_number": "3005050149"}
NOT_JSON = [
    None,
    "text/plain",
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "application/jsonx",
]


async def records(redis_client: aioredis.Redis, settings: Settings) -> list[bytes]:
    pattern = Keys(settings.REDIS_PREFIX).job("*")
    return [key async for key in redis_client.scan_iter(match=pattern)]


async def queued(broker: AbstractRobustConnection, settings: Settings) -> int:
    channel = await broker.channel()
    try:
        queue = await channel.declare_queue(names_of(settings).calls, passive=True)
        return int(queue.declaration_result.message_count or 0)
    finally:
        await channel.close()


@pytest.mark.parametrize("content_type", NOT_JSON)
@pytest.mark.parametrize(
    ("path", "body"), [("/tts/call", CALL), ("/tts/calls", {"calls": [CALL]})], ids=["one", "batch"]
)
async def test_a_body_not_sent_as_json_gets_415_naming_the_header(
    api: httpx.AsyncClient,
    broker: AbstractRobustConnection,
    redis_client: aioredis.Redis,
    settings: Settings,
    content_type: str | None,
    path: str,
    body: dict[str, object],
) -> None:
    before = await queued(broker, settings)
    headers = {} if content_type is None else {"content-type": content_type}
    reply = await api.post(path, content=json.dumps(body), headers=headers)
    assert reply.status_code == 415
    answer = reply.json()
    assert (answer["success"], answer["code"]) == (False, "unsupported_media_type")
    assert "Content-Type" in answer["error"]
    assert [d["field"] for d in answer["details"]] == ["Content-Type"]
    said = answer["details"][0]["message"]
    assert said.endswith("(missing)" if content_type is None else f"(not {content_type!r})")
    assert await records(redis_client, settings) == []
    assert await queued(broker, settings) == before


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "application/json"},
        {"content-type": "Application/JSON; charset=utf-8"},
        {"content-type": "application/merge-patch+json"},
    ],
    ids=["json", "json-with-charset", "json-suffix"],
)
async def test_json_bodies_are_still_taken(
    api: httpx.AsyncClient,
    redis_client: aioredis.Redis,
    settings: Settings,
    headers: dict[str, str],
) -> None:
    reply = await api.post("/tts/call", content=json.dumps(CALL), headers=headers)
    assert reply.status_code == 202, reply.text
    job = await build_store(redis_client, settings).jobs.get(reply.json()["job_id"])
    assert job is not None
    assert job.text == CALL["text"]


async def test_a_wrong_media_type_is_answered_before_the_body_is_judged(
    api: httpx.AsyncClient,
) -> None:
    """Even a body that would fail validation gets the 415: the header is what to fix first."""
    reply = await api.post(
        "/tts/call", content=b"text=Hola", headers={"content-type": "text/plain"}
    )
    assert reply.status_code == 415


def test_the_media_type_rule() -> None:
    assert not is_json_media_type(None)
    assert is_json_media_type(" application/json ;charset=utf-8")
    assert is_json_media_type("application/problem+json")
    assert not is_json_media_type("text/json+plain")
    assert not is_json_media_type("")
    assert not is_json_media_type("application/json-seq")
