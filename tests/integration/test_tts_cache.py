"""Audio cache index in real Redis: LRU eviction, leases that pin entries, and agreement
between workers that share the index and the audio directory."""

from __future__ import annotations

import asyncio
import io
import itertools
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis
import soundfile as sf

from tests.conftest import make_settings
from ttsqueue.config import Settings
from ttsqueue.store.factory import keys_for
from ttsqueue.store.keys import Keys
from ttsqueue.tts import cache as cache_module
from ttsqueue.tts.audio import ConvertedAudio
from ttsqueue.tts.cache import AudioCache, Lease
from ttsqueue.tts.espeak import EspeakEngine
from ttsqueue.tts.service import SpeechService

ENTRY = 8000  # bytes of audio per test entry (plus the WAV header)


class StepClock:
    """Wall clock in ms that advances 1 ms per reading, so every LRU touch is ordered."""

    def __init__(self) -> None:
        self._ticks = itertools.count(int(time.time() * 1000))

    def __call__(self) -> int:
        return next(self._ticks)


def _audio(samples: int = ENTRY // 2) -> ConvertedAudio:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(samples, np.int16), 8000, format="WAV", subtype="PCM_16")
    return ConvertedAudio(wav=buffer.getvalue(), duration_s=samples / 8000)


SIZE = len(_audio().wav)


def _cache(settings: Settings, client: aioredis.Redis, entries: float) -> AudioCache:
    keys = Keys(settings.REDIS_PREFIX)
    return AudioCache(client, keys, settings.AUDIO_DIR, int(SIZE * entries), clock_ms=StepClock())


async def _index(cache: AudioCache, client: aioredis.Redis, settings: Settings) -> set[str]:
    keys = Keys(settings.REDIS_PREFIX)
    indexed = {str(key) for key in await client.zrange(keys.cache_lru, 0, -1)}
    assert indexed == set(await client.hkeys(keys.cache_sizes))
    assert indexed == set(await client.hkeys(keys.cache_files))
    return indexed


def _on_disk(cache: AudioCache) -> set[str]:
    return {path.stem for path in cache.directory.glob("*.wav")}


async def test_lru_eviction_keeps_pinned_entries(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    cache = _cache(settings, redis_client, entries=3.5)
    await cache.store("a", _audio(), lease=Lease("job-a:1", ttl_s=600))
    await cache.store("b", _audio(), lease=None)
    await cache.store("c", _audio(), lease=None)
    assert await cache.lookup("b", wideband=False, lease=None) is not None  # b is now newer
    await cache.store("d", _audio(), lease=None)  # over the limit: c is the oldest unpinned
    assert await _index(cache, redis_client, settings) == {"a", "b", "d"}
    assert _on_disk(cache) == {"a", "b", "d"}
    await cache.unpin("a", "job-a:1")
    await cache.store("e", _audio(), lease=None)
    assert _on_disk(cache) == {"b", "d", "e"}
    assert await cache.stats() == {
        "hits": 1,
        "misses": 0,
        "hit_rate": 1.0,
        "entries": 3,
        "bytes": 3 * SIZE,
    }


async def test_expired_lease_does_not_pin(settings: Settings, redis_client: aioredis.Redis) -> None:
    cache = _cache(settings, redis_client, entries=1.5)
    await cache.store("old", _audio(), lease=Lease("job-old:1", ttl_s=0.001))
    await asyncio.sleep(0.01)  # the holder died: its lease runs out
    await cache.store("new", _audio(), lease=None)
    assert _on_disk(cache) == {"new"}


async def test_pinned_entries_are_kept_even_over_the_limit(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    cache = _cache(settings, redis_client, entries=1.5)
    for name in ("x", "y", "z"):
        await cache.store(name, _audio(), lease=Lease(f"job-{name}:1", ttl_s=600))
    assert _on_disk(cache) == {"x", "y", "z"}
    assert (await cache.stats())["bytes"] == 3 * SIZE
    await cache.unpin("x", "job-x:1")
    await cache.unpin("y", "job-y:1")
    await cache.store("w", _audio(), lease=None)
    assert _on_disk(cache) == {"z", "w"}


async def test_pin_an_existing_entry(settings: Settings, redis_client: aioredis.Redis) -> None:
    cache = _cache(settings, redis_client, entries=1.5)
    await cache.store("live", _audio(), lease=None)
    assert await cache.pin("live", "call-1", ttl_s=600)
    assert not await cache.pin("never-stored", "call-2", ttl_s=600)
    await cache.store("other", _audio(), lease=None)
    assert _on_disk(cache) == {"live", "other"}
    ttl = await redis_client.pttl(Keys(settings.REDIS_PREFIX).cache_in_use("live"))
    assert 590_000 < ttl <= 600_000  # the lease set expires by itself


async def test_eviction_spares_a_copy_written_again_meanwhile(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    cache = _cache(settings, redis_client, entries=1.5)
    await cache.store("k", _audio(), lease=None)
    # Another worker has just put "k" in place again and is about to register it.
    cache_module._put_in_place(cache._stage_files("k", _audio()))
    await cache.store("other", _audio(), lease=None)  # evicts the old "k"
    assert await _index(cache, redis_client, settings) == {"other"}
    assert _on_disk(cache) == {"k", "other"}


async def test_an_entry_written_by_two_workers_at_once_is_indexed_as_the_file_on_disk(
    settings: Settings, redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first writer stalls between writing its files and renaming them into place; the
    second writes its own meanwhile. Whatever order they finish in, the index must name the
    copy on disk, or evicting the entry would leave its files behind."""
    stalled, go = threading.Event(), threading.Event()
    renames = itertools.count()
    put_in_place = cache_module._put_in_place

    def stall_the_first(staged: list[tuple[Path, Path]]) -> str:
        if next(renames) == 0:
            stalled.set()
            go.wait(60)
        return put_in_place(staged)

    monkeypatch.setattr(cache_module, "_put_in_place", stall_the_first)
    slow, fast = (_cache(settings, redis_client, entries=1.5) for _ in range(2))
    first = asyncio.create_task(slow.store("k", _audio(), lease=None))
    try:
        assert await asyncio.to_thread(stalled.wait, 60)
        second = asyncio.create_task(fast.store("k", _audio(), lease=None))
        deadline = time.monotonic() + 60
        while len(list(slow.directory.glob(".k.wav.*.tmp"))) < 2:  # both copies written
            assert time.monotonic() < deadline
            assert not second.done()  # it must wait for the first to finish
            await asyncio.sleep(0.01)
    finally:
        go.set()
    await asyncio.wait_for(asyncio.gather(first, second), 60)
    keys = Keys(settings.REDIS_PREFIX)
    assert await redis_client.hget(keys.cache_files, "k") == cache_module._identity(
        slow.wav_path("k")
    )
    await fast.store("other", _audio(), lease=None)  # evicts "k"
    assert await _index(fast, redis_client, settings) == {"other"} == _on_disk(fast)
    assert not list(fast.directory.glob(".*.tmp"))
    assert not await redis_client.exists(keys.cache_writing("k"))


async def test_workers_sharing_the_cache_agree(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    clients = [aioredis.from_url(settings.REDIS_URL, decode_responses=True) for _ in range(3)]
    caches = [_cache(settings, client, entries=4.5) for client in clients]

    async def worker(cache: AudioCache, seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(40):
            key = f"msg{rng.integers(0, 12)}"
            if await cache.lookup(key, wideband=False, lease=None) is None:
                await cache.store(key, _audio(), lease=None)

    try:
        await asyncio.gather(*(worker(cache, seed) for seed, cache in enumerate(caches)))
    finally:
        for client in clients:
            await client.aclose()
    cache = _cache(settings, redis_client, entries=4.5)  # the workers' clients are closed
    keys = Keys(settings.REDIS_PREFIX)
    indexed = await _index(cache, redis_client, settings)
    assert indexed == _on_disk(cache)
    sizes = [int(v) for v in await redis_client.hvals(keys.cache_sizes)]
    stats = await cache.stats()
    assert stats["bytes"] == sum(sizes) == len(indexed) * SIZE <= cache.max_bytes
    assert stats["hits"] + stats["misses"] <= 120
    assert stats["entries"] == 4


async def test_service_eviction_with_espeak_keeps_the_live_call(
    settings: Settings, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    tiny = make_settings(tmp_path, REDIS_PREFIX=settings.REDIS_PREFIX, AUDIO_CACHE_MAX_MB=0.05)
    service = SpeechService(
        tiny, redis_client, keys_for(tiny), {"espeak": await EspeakEngine.create()}
    )
    half = tiny.audio_cache_max_bytes / 2  # each entry must be larger than this
    live = await service.prepare("Su cita es mañana a las nueve.", "es", lease_id="job-1:1")
    assert live.wav_path.stat().st_size > half
    idle = await service.prepare("Su pedido fue enviado hoy.", "es")
    assert idle.wav_path.stat().st_size > half
    newest = await service.prepare("Gracias por su atención, adiós.", "es")
    assert newest.wav_path.stat().st_size > half
    assert live.wav_path.exists()
    assert not idle.wav_path.exists()
    assert newest.wav_path.exists()
    assert (await service.cache.stats())["entries"] == 2
    await service.unpin(live.cache_key, "job-1:1")
    again = await service.prepare("Su pedido fue enviado hoy.", "es")
    assert not again.cached
    assert not live.wav_path.exists()


@pytest.mark.parametrize("wideband", [False, True])
async def test_lookup_needs_every_file(
    settings: Settings, redis_client: aioredis.Redis, wideband: bool
) -> None:
    cache = _cache(settings, redis_client, entries=10)
    audio = _audio()
    await cache.store("narrow", audio, lease=None)
    entry = await cache.lookup("narrow", wideband=wideband, lease=None)
    assert (entry is None) == wideband  # no .sln16 was made for it


async def test_a_file_check_stands_for_a_moment_then_is_made_again(
    settings: Settings, redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many calls playing one message look its files up once per moment, not once each (the
    check is a thread hop); a file removed behind the product's back is noticed after it."""
    keys = Keys(settings.REDIS_PREFIX)
    cache = AudioCache(redis_client, keys, settings.AUDIO_DIR, 10 * SIZE, files_seen_s=0.3)
    checks: list[str] = []
    own_check = AudioCache._read_files

    def counted(self: AudioCache, key: str, wideband: bool) -> float | None:
        checks.append(key)
        return own_check(self, key, wideband)

    monkeypatch.setattr(AudioCache, "_read_files", counted)
    await cache.store("message", _audio(), lease=None)
    for n in range(5):
        entry = await cache.lookup("message", wideband=False, lease=Lease(f"call-{n}", 600))
        assert entry is not None
    assert checks == ["message"]
    # Every lookup still touched and pinned the entry in Redis.
    assert await redis_client.zcard(keys.cache_in_use("message")) == 5
    cache.wav_path("message").unlink()
    await asyncio.sleep(0.35)
    assert await cache.lookup("message", wideband=False, lease=None) is None
    assert checks == ["message", "message"]


async def test_another_worker_reads_an_entrys_duration_from_its_wav(
    settings: Settings, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    """A worker that did not write an entry learns its length from the file's header, and a
    file that is not a readable WAV counts as missing, so the speech is made again."""
    writer = SpeechService(
        settings, redis_client, keys_for(settings), {"espeak": await EspeakEngine.create()}
    )
    made = await writer.prepare("Su código de verificación es cuatro, dos, siete.", "es")
    reader = _cache(settings, redis_client, entries=1000)
    found = await reader.lookup(made.cache_key, wideband=False, lease=None)
    assert found is not None
    assert found.duration_s == pytest.approx(made.duration_s, abs=1 / 8000)
    assert found.duration_s == pytest.approx(sf.info(str(made.wav_path)).duration, abs=1e-9)
    made.wav_path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    stranger = _cache(settings, redis_client, entries=1000)
    assert await stranger.lookup(made.cache_key, wideband=False, lease=None) is None
