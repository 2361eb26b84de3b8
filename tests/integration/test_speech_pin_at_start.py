"""A job's start pins its cached speech in the same Redis call (store/lua/transition.lua,
"pin"), and the speech service then uses that entry without touching it again.
(tests/integration/test_pipeline.py follows it through a worker.)"""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis

from tests.factories import lifecycle_of, make_job
from tests.integration.test_tts_cache import _audio
from tests.integration.test_tts_service import SPANISH, CountingEngine, _service
from ttsqueue.config import Settings
from ttsqueue.domain import Job, attempt_call_id
from ttsqueue.store.keys import Keys
from ttsqueue.store.lifecycle import Delivered, JobLifecycle, SpeechPin
from ttsqueue.tts.cache import AudioCache, Lease, cache_key
from ttsqueue.tts.espeak import EspeakEngine

pytestmark = pytest.mark.timeout(30)

PIN_TTL_S = 600.0


@pytest.fixture
async def espeak() -> CountingEngine:
    return CountingEngine(await EspeakEngine.create())


def _cache(settings: Settings, client: aioredis.Redis) -> AudioCache:
    return AudioCache(client, Keys(settings.REDIS_PREFIX), settings.AUDIO_DIR, 10_000_000)


async def _deliver(lifecycle: JobLifecycle, job: Job, keys: list[str] | None) -> Delivered:
    return await lifecycle.deliver(
        job.job_id,
        attempt=1,
        tech_retries=0,
        priority=job.priority,
        worker_id="w",
        max_deliveries=5,
        pin=SpeechPin(keys, PIN_TTL_S) if keys is not None else None,
    )


async def _hits(client: aioredis.Redis, keys: Keys) -> int:
    return int(await client.hget(keys.cache_stats, "hits") or 0)


async def test_the_start_pins_the_first_cached_of_the_keys_it_is_given(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    keys = Keys(settings.REDIS_PREFIX)
    lifecycle = lifecycle_of(redis_client, settings)
    cache = _cache(settings, redis_client)
    first, fallback, nothing = jobs = [make_job() for _ in range(3)]
    for job in jobs:
        await lifecycle.create(job)
    gtts_key = cache_key("gtts", None, "es", first.text)
    espeak_key = cache_key("espeak", None, "es", first.text)
    planned = [gtts_key, espeak_key]

    # Only the fallback's entry is cached: it is the one pinned.
    await cache.store(espeak_key, _audio(), lease=None)
    before = int(time.time() * 1000)
    got = await _deliver(lifecycle, fallback, planned)
    assert got.started
    assert got.pinned == espeak_key
    score = await redis_client.zscore(
        keys.cache_in_use(espeak_key), attempt_call_id(fallback.job_id, 1)
    )
    assert score is not None
    assert before + PIN_TTL_S * 1000 <= score <= time.time() * 1000 + PIN_TTL_S * 1000
    assert await redis_client.pttl(keys.cache_in_use(espeak_key)) > (PIN_TTL_S - 10) * 1000
    assert await _hits(redis_client, keys) == 1
    used = await redis_client.zscore(keys.cache_lru, espeak_key)
    assert used is not None
    assert used >= before

    # Both cached: the first of the keys comes first.
    await cache.store(gtts_key, _audio(), lease=None)
    got = await _deliver(lifecycle, first, planned)
    assert got.pinned == gtts_key
    assert await _hits(redis_client, keys) == 2

    # A delivery that does not start the job pins nothing and counts no hit.
    again = await _deliver(lifecycle, first, planned)
    assert not again.started
    assert again.pinned is None
    assert await _hits(redis_client, keys) == 2

    # None of the keys cached: nothing pinned, no hit.
    got = await _deliver(lifecycle, nothing, ["0" * 64, "1" * 64])
    assert got.started
    assert got.pinned is None
    assert not await redis_client.exists(keys.cache_in_use("0" * 64))
    assert await _hits(redis_client, keys) == 2


async def test_a_start_not_asked_to_pin_leaves_the_cache_alone(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    keys = Keys(settings.REDIS_PREFIX)
    lifecycle = lifecycle_of(redis_client, settings)
    job, other = make_job(), make_job()
    await lifecycle.create(job)
    await lifecycle.create(other)
    key = cache_key("espeak", None, "es", job.text)
    await _cache(settings, redis_client).store(key, _audio(), lease=None)
    for started in (await _deliver(lifecycle, job, None), await _deliver(lifecycle, other, [])):
        assert started.started
        assert started.pinned is None
    assert not await redis_client.exists(keys.cache_in_use(key))
    assert await _hits(redis_client, keys) == 0


async def test_the_pinned_entry_is_spoken_without_a_second_touch(
    redis_client: aioredis.Redis, settings: Settings, espeak: CountingEngine
) -> None:
    keys = Keys(settings.REDIS_PREFIX)
    service = _service(settings, redis_client, espeak, TTS_FALLBACK_ENGINE="")
    spoken = await service.prepare(SPANISH, "es", None, "espeak")
    lifecycle = lifecycle_of(redis_client, settings)
    job = make_job(text=SPANISH)
    await lifecycle.create(job)
    plan = service.plan(SPANISH, "es", None, "espeak")
    assert plan.keys == [spoken.cache_key]
    got = await _deliver(lifecycle, job, plan.keys)
    assert got.pinned == spoken.cache_key
    assert await _hits(redis_client, keys) == 1

    call_id = attempt_call_id(job.job_id, 1)
    again = await service.prepare(
        SPANISH, "es", None, "espeak", lease_id=call_id, pinned=got.pinned, plan=plan
    )
    assert again.cached
    assert again.cache_key == spoken.cache_key
    assert espeak.calls == 1
    assert await _hits(redis_client, keys) == 1  # counted once, by the start
    assert await redis_client.zscore(keys.cache_in_use(spoken.cache_key), call_id) is not None


async def test_a_pin_on_an_entry_that_does_not_speak_is_dropped(
    redis_client: aioredis.Redis, settings: Settings, espeak: CountingEngine
) -> None:
    keys = Keys(settings.REDIS_PREFIX)
    service = _service(settings, redis_client, espeak, TTS_FALLBACK_ENGINE="")
    spoken = await service.prepare(SPANISH, "es", None, "espeak")
    # An entry the job's start pinned, no longer among the entries tried (settings changed).
    stale = "f" * 64
    call_id = "job-x:1"
    await _cache(settings, redis_client).store(stale, _audio(), lease=Lease(call_id, 600))
    got = await service.prepare(SPANISH, "es", None, "espeak", lease_id=call_id, pinned=stale)
    assert got.cache_key == spoken.cache_key
    assert await redis_client.zscore(keys.cache_in_use(stale), call_id) is None
    assert await redis_client.zscore(keys.cache_in_use(spoken.cache_key), call_id) is not None
