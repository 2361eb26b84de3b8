"""SpeechService with real espeak-ng and real Redis: synthesis, cache hits, single flight."""

from __future__ import annotations

import asyncio
import unicodedata
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import soundfile as sf

from tests.conftest import make_settings
from ttsqueue.config import Settings
from ttsqueue.errors import PermanentJobError
from ttsqueue.store.factory import keys_for
from ttsqueue.tts.base import SpeechAudio, SpeechRequest
from ttsqueue.tts.cache import AudioCache, Lease
from ttsqueue.tts.catalog import language_catalog
from ttsqueue.tts.espeak import EspeakEngine
from ttsqueue.tts.service import SpeechService, build_engines, supported_languages

SPANISH = "Hola. Le llamamos para confirmar su cita de mañana a las tres de la tarde."


class CountingEngine:
    """A real engine that counts how often it is asked to speak."""

    def __init__(self, inner: EspeakEngine) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = 0

    def supports(self, language: str) -> bool:
        return self.inner.supports(language)

    async def synthesize(self, request: SpeechRequest) -> SpeechAudio:
        self.calls += 1
        return await self.inner.synthesize(request)


@pytest.fixture
async def espeak() -> CountingEngine:
    return CountingEngine(await EspeakEngine.create())


def _service(
    settings: Settings, client: aioredis.Redis, engine: CountingEngine, **overrides: object
) -> SpeechService:
    if overrides:
        settings = make_settings(
            Path(settings.AUDIO_DIR).parent, REDIS_PREFIX=settings.REDIS_PREFIX, **overrides
        )
    return SpeechService(settings, client, keys_for(settings), {"espeak": engine})


async def test_spanish_text_becomes_an_asterisk_wav(
    settings: Settings, redis_client: aioredis.Redis, espeak: CountingEngine
) -> None:
    service = _service(settings, redis_client, espeak)
    prepared = await service.prepare(SPANISH, "es")
    assert not prepared.cached
    assert prepared.engine == "espeak"
    assert prepared.synth_s > 0
    assert prepared.wav_path == settings.AUDIO_DIR.absolute() / "cache" / (
        prepared.cache_key + ".wav"
    )
    assert prepared.wav_path.is_absolute()
    info = sf.info(str(prepared.wav_path))
    assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")
    assert abs(info.duration - prepared.duration_s) < 0.001
    assert prepared.wav_path.stat().st_mode & 0o777 == 0o644
    assert not prepared.wav_path.with_suffix(".sln16").exists()


async def test_second_request_is_a_cache_hit(
    settings: Settings, redis_client: aioredis.Redis, espeak: CountingEngine
) -> None:
    service = _service(settings, redis_client, espeak)
    first = await service.prepare(SPANISH, "es")
    # Same message, spelled differently: NFD accents and extra whitespace.
    again = await service.prepare("  " + unicodedata.normalize("NFD", SPANISH) + "\n", "es")
    assert espeak.calls == 1
    assert again.cached
    assert again.cache_key == first.cache_key
    assert again.wav_path == first.wav_path
    assert abs(again.duration_s - first.duration_s) < 0.001
    assert again.synth_s == 0.0
    stats = await service.cache.stats()
    assert stats == {
        "hits": 1,
        "misses": 1,
        "hit_rate": 0.5,
        "entries": 1,
        "bytes": first.wav_path.stat().st_size,
    }


async def test_another_process_sees_the_cache(
    settings: Settings, redis_client: aioredis.Redis, espeak: CountingEngine
) -> None:
    await _service(settings, redis_client, espeak).prepare(SPANISH, "es")
    other_engine = CountingEngine(espeak.inner)
    other = aioredis.from_url(settings.REDIS_URL, decode_responses=True)
    try:
        prepared = await _service(settings, other, other_engine).prepare(SPANISH, "es")
    finally:
        await other.aclose()
    assert prepared.cached
    assert other_engine.calls == 0


async def test_lost_file_is_regenerated(
    settings: Settings, redis_client: aioredis.Redis, espeak: CountingEngine
) -> None:
    service = _service(settings, redis_client, espeak)
    first = await service.prepare(SPANISH, "es")
    first.wav_path.unlink()
    again = await service.prepare(SPANISH, "es")
    assert not again.cached
    assert again.wav_path.exists()
    assert espeak.calls == 2
    assert (await service.cache.stats())["bytes"] == again.wav_path.stat().st_size


async def test_concurrent_requests_synthesize_once(
    settings: Settings, redis_client: aioredis.Redis, espeak: CountingEngine
) -> None:
    service = _service(settings, redis_client, espeak)
    results = await asyncio.gather(*(service.prepare(SPANISH, "es") for _ in range(6)))
    assert espeak.calls == 1
    assert sorted(r.cached for r in results) == [False] + [True] * 5
    assert len({r.cache_key for r in results}) == 1


async def test_jobs_of_a_cached_message_look_it_up_side_by_side(
    settings: Settings,
    redis_client: aioredis.Redis,
    espeak: CountingEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = _service(settings, redis_client, espeak)
    await service.prepare(SPANISH, "es")
    # How many of the cache's Redis touches are waiting for their reply at once.
    waiting, most = 0, 0
    touch = AudioCache.touch

    async def counted(self: AudioCache, key: str, *, lease: Lease | None) -> bool:
        nonlocal waiting, most
        waiting += 1
        most = max(most, waiting)
        try:
            return await touch(self, key, lease=lease)
        finally:
            waiting -= 1

    monkeypatch.setattr(AudioCache, "touch", counted)
    results = await asyncio.gather(
        *(service.prepare(SPANISH, "es", lease_id=f"call-{n}") for n in range(8))
    )
    assert all(r.cached for r in results)
    assert espeak.calls == 1
    # A hit takes no lock: the eight touches were all sent before the first reply came back
    # (under the text's lock they went one at a time).
    assert most == 8
    assert (await service.cache.stats())["hits"] == 8


async def test_voice_and_language_are_separate_entries(
    settings: Settings, redis_client: aioredis.Redis, espeak: CountingEngine
) -> None:
    service = _service(settings, redis_client, espeak)
    keys = {
        (await service.prepare(SPANISH, "es")).cache_key,
        (await service.prepare(SPANISH, "es", voice="es+f3")).cache_key,
        (await service.prepare(SPANISH, "es-419")).cache_key,
    }
    assert len(keys) == 3
    assert espeak.calls == 3


async def test_wideband_writes_sln16(
    settings: Settings, redis_client: aioredis.Redis, espeak: CountingEngine
) -> None:
    service = _service(settings, redis_client, espeak, AUDIO_WIDEBAND=True)
    prepared = await service.prepare(SPANISH, "es")
    sln16 = prepared.wav_path.with_suffix(".sln16")
    samples = sln16.stat().st_size / 2
    assert abs(samples / 16000 - prepared.duration_s) < 0.001
    cached = await service.prepare(SPANISH, "es")
    assert cached.cached
    assert cached.wav_path.with_suffix(".sln16") == sln16
    size = prepared.wav_path.stat().st_size + sln16.stat().st_size
    assert (await service.cache.stats())["bytes"] == size


async def test_unusable_requests_are_permanent_errors(
    settings: Settings, redis_client: aioredis.Redis, espeak: CountingEngine
) -> None:
    service = _service(settings, redis_client, espeak)
    with pytest.raises(PermanentJobError, match="no configured engine speaks 'xx'"):
        await service.prepare(SPANISH, "xx")
    with pytest.raises(PermanentJobError, match="empty"):
        await service.prepare(" \n\t ", "es")
    with pytest.raises(PermanentJobError, match="no configured engine"):
        await service.prepare(SPANISH, "es", engine_name="piper")
    assert espeak.calls == 0


async def test_build_engines_and_languages(tmp_path: Path) -> None:
    engines = await build_engines(make_settings(tmp_path, TTS_ENGINE="gtts"))
    assert set(engines) == {"gtts", "espeak"}
    languages = supported_languages(engines)
    assert "es" in languages["gtts"]
    assert {"es", "es-419"} <= languages["espeak"]
    assert "zh-cn" in languages["gtts"]
    assert engines["gtts"].supports("zh-CN")
    # What the API validates against, without building any engine, says the same.
    catalog = language_catalog(make_settings(tmp_path, TTS_ENGINE="gtts"))
    assert catalog == languages
