"""Text in, a file Asterisk can play out: cache, synthesis with fallback, conversion."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

from ttsqueue.config import Settings
from ttsqueue.errors import PermanentJobError, TTSError
from ttsqueue.logs import get_logger
from ttsqueue.store.keys import Keys
from ttsqueue.tts.audio import ConvertedAudio
from ttsqueue.tts.base import SpeechEngine, SpeechRequest
from ttsqueue.tts.breaker import BreakerState, CircuitBreaker
from ttsqueue.tts.cache import AudioCache, CacheEntry, Lease, cache_key, normalize_text
from ttsqueue.tts.engines import build_engines, supported_languages
from ttsqueue.tts.keyed_locks import KeyedLocks

__all__ = [
    "PreparedAudio",
    "SpeechPlan",
    "SpeechService",
    "build_engines",
    "supported_languages",
]

log = get_logger("ttsqueue.tts")


@dataclass(frozen=True, slots=True)
class PreparedAudio:
    cache_key: str
    wav_path: Path
    duration_s: float
    cached: bool
    engine: str  # the engine whose audio this is (the fallback's when it was used)
    synth_s: float = 0.0  # engine time, 0 for cache hits


@dataclass(frozen=True, slots=True)
class _Step:
    name: str
    engine: SpeechEngine
    voice: str | None
    key: str


@dataclass(frozen=True, slots=True)
class SpeechPlan:
    """Which engines (with which voice) may speak a text, in order, and their cache keys."""

    asked: tuple[str, str, str | None, str]  # text, language, voice, engine as asked
    text: str  # normalized
    steps: tuple[_Step, ...]

    @property
    def keys(self) -> list[str]:
        return [step.key for step in self.steps]


class SpeechService:
    def __init__(
        self,
        settings: Settings,
        client: aioredis.Redis,
        keys: Keys,
        engines: Mapping[str, SpeechEngine],
    ) -> None:
        self.settings = settings
        self.engines = dict(engines)
        self.cache = AudioCache(client, keys, settings.AUDIO_DIR, settings.audio_cache_max_bytes)
        self._locks = KeyedLocks()

    async def prepare(
        self,
        text: str,
        language: str,
        voice: str | None = None,
        engine_name: str | None = None,
        *,
        lease_id: str | None = None,
        lease_ttl_s: float | None = None,
        pinned: str | None = None,
        plan: SpeechPlan | None = None,
    ) -> PreparedAudio:
        """Cached or fresh audio for `text`. With `lease_id`, the entry is pinned against
        eviction (until `unpin` or `lease_ttl_s`, default the longest call) in the same step.
        `pinned`: the cache key the job's start already touched and pinned under `lease_id`
        (store/lifecycle.py `deliver`); that entry is used without asking Redis again, and
        its pin is dropped if another entry speaks instead. `plan`: `plan`'s answer for the
        same arguments, made earlier (used only if it is for them).

        Order: the requested engine's cache, its synthesis, then (if it fails) the fallback
        engine's cache and synthesis. Raises TTSError when every engine failed."""
        engine_name = str(engine_name or self.settings.TTS_ENGINE)
        if plan is None or plan.asked != (text, language, voice, engine_name):
            plan = self.plan(text, language, voice, engine_name)
        steps, spoken = plan.steps, plan.text
        lease = None
        if lease_id is not None:
            lease = Lease(lease_id, lease_ttl_s or self.lease_ttl_s)
        # A cached entry needs no single flight: the first step's entry is looked up before
        # the text's lock is taken, so that jobs of one message never wait in turn on Redis.
        first = steps[0]
        touched = first.key == pinned or await self.cache.touch(first.key, lease=lease)
        entry = None
        if touched:
            entry = await self.cache.files(first.key, wideband=self.settings.AUDIO_WIDEBAND)
        if entry is not None:
            prepared = _prepared(entry, first.name, cached=True)
        else:
            async with self._locks.hold(first.key):
                prepared = await self._prepare(steps, spoken, language, lease, pinned, touched)
        if pinned is not None and lease is not None and prepared.cache_key != pinned:
            await self.cache.unpin(pinned, lease.lease_id)
        return prepared

    async def _prepare(
        self,
        steps: tuple[_Step, ...],
        text: str,
        language: str,
        lease: Lease | None,
        pinned: str | None,
        first_touched: bool,
    ) -> PreparedAudio:
        """Under the first step's lock: each step's cache entry (touched again unless it was
        already: `pinned`, or the first step's when `first_touched`), else its engine."""
        wideband = self.settings.AUDIO_WIDEBAND
        failures: list[str] = []
        for index, step in enumerate(steps):
            touched = step.key == pinned or (index == 0 and first_touched)
            entry = await self.cache.lookup(
                step.key, wideband=wideband, lease=lease, touched=touched
            )
            if entry is not None:
                return _prepared(entry, step.name, cached=True)
            if _circuit_open(step.engine):
                failures.append(f"{step.name}: circuit open")
                continue
            try:
                prepared = await self._synthesize(step, text, language, lease)
            except TTSError as exc:
                failures.append(f"{step.name}: {exc}")
                log.warning("speech engine failed", engine=step.name, error=str(exc))
                continue
            await self.cache.count_miss()
            return prepared
        await self.cache.count_miss()
        raise TTSError("; ".join(failures))

    async def _synthesize(
        self, step: _Step, text: str, language: str, lease: Lease | None
    ) -> PreparedAudio:
        started = time.perf_counter()
        audio = await step.engine.synthesize(SpeechRequest(text, language, step.voice))
        synth_s = time.perf_counter() - started
        converted = await asyncio.to_thread(_convert, audio.data, self.settings.AUDIO_WIDEBAND)
        entry = await self.cache.store(step.key, converted, lease=lease)
        return _prepared(entry, step.name, cached=False, synth_s=synth_s)

    def plan(
        self, text: str, language: str, voice: str | None = None, engine_name: str | None = None
    ) -> SpeechPlan:
        """The engines that may speak `text`, in the order `prepare` tries them, with their
        cache keys: no I/O. Raises PermanentJobError when the text is empty or no configured
        engine speaks the language."""
        engine_name = str(engine_name or self.settings.TTS_ENGINE)
        spoken = normalize_text(text)
        if not spoken:
            raise PermanentJobError("nothing to speak: the text is empty", reason="empty_text")
        steps: list[_Step] = []
        candidates = [(engine_name, voice)]
        fallback = self.settings.TTS_FALLBACK_ENGINE
        if fallback is not None and fallback.value != engine_name:
            candidates.append((fallback.value, None))  # voices are engine-specific
        for name, step_voice in candidates:
            engine = self.engines.get(name)
            if engine is not None and engine.supports(language):
                key = cache_key(name, step_voice, language, spoken)
                steps.append(_Step(name, engine, step_voice, key))
        if not steps:
            raise PermanentJobError(
                f"no configured engine speaks {language!r} (asked for {engine_name!r})",
                reason="unsupported_language",
            )
        return SpeechPlan((text, language, voice, engine_name), spoken, tuple(steps))

    @property
    def lease_ttl_s(self) -> float:
        """How long a call's lease pins its audio unless dropped: the longest call."""
        return float(self.settings.CALL_MAX_DURATION + self.settings.CALL_RING_TIMEOUT)

    async def unpin(self, cache_key: str, lease_id: str) -> None:
        await self.cache.unpin(cache_key, lease_id)

    def health(self) -> str:
        """`degraded` while an engine's circuit breaker keeps it from being called, else `ok`."""
        degraded = any(_circuit_open(engine) for engine in self.engines.values())
        return "degraded" if degraded else "ok"


def _prepared(
    entry: CacheEntry, engine: str, *, cached: bool, synth_s: float = 0.0
) -> PreparedAudio:
    return PreparedAudio(
        cache_key=entry.key,
        wav_path=entry.wav_path,
        duration_s=entry.duration_s,
        cached=cached,
        engine=engine,
        synth_s=synth_s,
    )


def _circuit_open(engine: SpeechEngine) -> bool:
    breaker = getattr(engine, "breaker", None)
    return isinstance(breaker, CircuitBreaker) and breaker.state is BreakerState.OPEN


def _convert(data: bytes, wideband: bool) -> ConvertedAudio:
    """Run in the conversion's thread. The converter's import loads numpy, libsndfile and soxr
    (about a tenth of a worker's start-up) on the first synthesis instead of at start: a worker
    whose speech all comes from the cache never needs them."""
    from ttsqueue.tts.convert import convert_for_asterisk

    return convert_for_asterisk(data, wideband=wideband)
