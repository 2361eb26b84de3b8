"""A job's start pins its cached speech in the same Redis call (store/lua/transition.lua,
"pin"), and the speech service then uses that entry without touching it again."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis

from tests.factories import lifecycle_of, make_job
from tests.integration.test_tts_cache import _audio
from tests.integration.test_tts_service import SPANISH, CountingEngine, _service
from ttsqueue.config import Settings
from ttsqueue.domain import Job, attempt_call_id
from ttsqueue.speech_keys import planned_keys
from ttsqueue.store.keys import Keys
from ttsqueue.store.lifecycle import SPEECH_KEYS_FIELD, Delivered, JobLifecycle
from ttsqueue.tts.cache import AudioCache, Lease
from ttsqueue.tts.espeak import EspeakEngine

pytestmark = pytest.mark.timeout(30)

PIN_TTL_S = 600.0


@pytest.fixture
async def espeak() -> CountingEngine:
    return CountingEngine(await EspeakEngine.create())


def _cache(settings: Settings, client: aioredis.Redis) -> AudioCache:
    return AudioCache(client, Keys(settings.REDIS_PREFIX), settings.AUDIO_DIR, 10_000_000)


async def _deliver(lifecycle: JobLifecycle, job: Job, *, pin: bool = True) -> Delivered:
    return await lifecycle.deliver(
        job.job_id,
        attempt=1,
        tech_retries=0,
        priority=job.priority,
        worker_id="w",
        max_deliveries=5,
        pin_ttl_s=PIN_TTL_S if pin else None,
    )


async def _hits(client: aioredis.Redis, keys: Keys) -> int:
    return int(await client.hget(keys.cache_stats, "hits") or 0)


async def test_the_record_names_its_entries_and_the_start_pins_the_first_cached(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    keys = Keys(settings.REDIS_PREFIX)
    lifecycle = lifecycle_of(redis_client, settings, speech_fallback="espeak")
    cache = _cache(settings, redis_client)
    jobs = [make_job().model_copy(update={"engine": "gtts"}) for _ in range(3)]
    first, fallback, nothing = jobs
    for job in jobs:
        await lifecycle.create(job)
    gtts_key, espeak_key = planned_keys(first.text, "es", None, "gtts", "espeak")
    field = await redis_client.hget(keys.job(first.job_id), SPEECH_KEYS_FIELD)
    assert field == f"{gtts_key} {espeak_key}"

    # Only the fallback's entry is cached: it is the one pinned.
    await cache.store(espeak_key, _audio(), lease=None)
    before = int(time.time() * 1000)
    got = await _deliver(lifecycle, fallback)
    assert got.started
    assert got.pinned == espeak_key
    score = await redis_client.zscore(
        keys.cache_in_use(espeak_key), attempt_call_id(fallback.job_id, 1)
    )
    assert score is not None
    assert before + PIN_TTL_S * 1000 <= score <= time.time() * 1000 + PIN_TTL_S * 1000
    assert await _hits(redis_client, keys) == 1
    assert await redis_client.zscore(keys.cache_lru, espeak_key) >= before

    # Both cached: the job's own engine comes first.
    await cache.store(gtts_key, _audio(), lease=None)
    got = await _deliver(lifecycle, first)
    assert got.pinned == gtts_key
    assert await _hits(redis_client, keys) == 2

    # A delivery that does not start the job pins nothing and counts no hit.
    again = await _deliver(lifecycle, first)
    assert not again.started
    assert again.pinned is None
    assert await _hits(redis_client, keys) == 2

    # Nothing cached for a job's text: nothing pinned, no hit.
    await redis_client.hset(keys.job(nothing.job_id), SPEECH_KEYS_FIELD, "0" * 64)
    got = await _deliver(lifecycle, nothing)
    assert got.started
    assert got.pinned is None
    assert not await redis_client.exists(keys.cache_in_use("0" * 64))
    assert await _hits(redis_client, keys) == 2


async def test_a_start_not_asked_to_pin_leaves_the_cache_alone(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    keys = Keys(settings.REDIS_PREFIX)
    lifecycle = lifecycle_of(redis_client, settings)
    job = make_job()
    await lifecycle.create(job)
    (key,) = planned_keys(job.text, "es", None, "espeak", None)
    await _cache(settings, redis_client).store(key, _audio(), lease=None)
    got = await _deliver(lifecycle, job, pin=False)
    assert got.started
    assert got.pinned is None
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
    got = await _deliver(lifecycle, job)
    assert got.pinned == spoken.cache_key
    assert await _hits(redis_client, keys) == 1

    call_id = attempt_call_id(job.job_id, 1)
    again = await service.prepare(
        SPANISH, "es", None, "espeak", lease_id=call_id, pinned=got.pinned
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
