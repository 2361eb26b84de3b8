"""The store's own errors at its edge, on real Redis: an unreachable server is a
StoreUnavailableError for commands, pipelines, scripts and pub/sub alike; any other refusal is
a StoreError; redis-py's own script reload still works underneath."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from tests.factories import lifecycle_of, make_job
from tests.ports import free_port
from ttsqueue.config import Settings
from ttsqueue.errors import ConnectionLostError, StoreError, StoreUnavailableError
from ttsqueue.store.connection import connect_redis

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def nowhere() -> AsyncIterator[aioredis.Redis]:
    client = connect_redis(f"redis://127.0.0.1:{free_port()}/0", client_name="pytest-nowhere")
    yield client
    await client.aclose()


async def test_an_unreachable_redis_is_one_error_everywhere(
    nowhere: aioredis.Redis, settings: Settings
) -> None:
    with pytest.raises(StoreUnavailableError) as command:
        await nowhere.get("anything")
    assert isinstance(command.value, ConnectionLostError)  # workers requeue, the API says 503
    pipe = nowhere.pipeline(transaction=False)
    pipe.get("a")
    pipe.get("b")
    with pytest.raises(StoreUnavailableError):
        await pipe.execute()
    with pytest.raises(StoreUnavailableError):
        await lifecycle_of(nowhere, settings).create(make_job())
    pubsub = nowhere.pubsub()
    with pytest.raises(StoreUnavailableError):
        await pubsub.subscribe("events")
    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]


async def test_other_refusals_are_store_errors(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    key = f"{settings.REDIS_PREFIX}a-string"
    await redis_client.set(key, "x")
    with pytest.raises(StoreError) as refused:
        await redis_client.hget(key, "field")  # WRONGTYPE
    assert not isinstance(refused.value, StoreUnavailableError)


async def test_a_script_redis_does_not_know_yet_is_loaded(redis_client: aioredis.Redis) -> None:
    """EVALSHA of a script never loaded (or forgotten by a restart) answers NOSCRIPT, which
    redis-py handles by loading it: that refusal must pass the store's edge untouched."""
    token = uuid.uuid4().hex
    script = redis_client.register_script(f"return '{token}'")
    assert await script() == token
