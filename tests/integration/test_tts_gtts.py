"""gTTS against the network this machine really has (Google unreachable): failures are
mapped to TTSError, jobs fall back to espeak-ng, and the circuit breaker stops paying for
the failure once it is open."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis
import soundfile

from tests.conftest import make_settings
from ttsqueue.config import Settings
from ttsqueue.errors import PermanentJobError, TTSError
from ttsqueue.store.factory import keys_for
from ttsqueue.tts.base import SpeechAudio, SpeechRequest
from ttsqueue.tts.breaker import BreakerState
from ttsqueue.tts.espeak import EspeakEngine
from ttsqueue.tts.gtts_engine import GttsEngine, fetch_mp3
from ttsqueue.tts.service import SpeechService


class CountingFetch:
    """The real gTTS fetch, counting how often the network is tried."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, text: str, lang: str, tld: str, timeout_s: float) -> bytes:
        self.calls += 1
        return fetch_mp3(text, lang, tld, timeout_s)


class CountingEngine:
    def __init__(self, inner: EspeakEngine) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = 0

    def supports(self, language: str) -> bool:
        return self.inner.supports(language)

    async def synthesize(self, request: SpeechRequest) -> SpeechAudio:
        self.calls += 1
        return await self.inner.synthesize(request)


def _gtts_settings(base: Settings, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "REDIS_PREFIX": base.REDIS_PREFIX,
        "TTS_ENGINE": "gtts",
        "TTS_FALLBACK_ENGINE": "espeak",
        "GTTS_TIMEOUT": 0.5,
        "GTTS_MAX_RPS": 100,
        "GTTS_BREAKER_THRESHOLD": 2,
        "GTTS_BREAKER_COOLDOWN": 60,
    }
    values.update(overrides)
    return make_settings(tmp_path, **values)


@pytest.fixture
async def silent_proxy(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[int]]:
    """An HTTPS proxy that accepts connections and never answers: a network that hangs."""
    accepted: list[int] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            await reader.read()
        finally:
            writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    for name in ("https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{port}")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    try:
        yield accepted
    finally:
        server.close()
        await server.wait_closed()


async def test_unreachable_google_falls_back_then_breaker_skips_it(
    settings: Settings, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    config = _gtts_settings(settings, tmp_path)
    fetch = CountingFetch()
    gtts = GttsEngine.from_settings(config, fetch=fetch)
    espeak = CountingEngine(await EspeakEngine.create())
    service = SpeechService(
        config, redis_client, keys_for(config), {"gtts": gtts, "espeak": espeak}
    )

    first = await service.prepare("Primer aviso de prueba.", "es")
    assert (first.engine, first.cached, fetch.calls) == ("espeak", False, 1)
    assert service.health() == "ok"

    await service.prepare("Segundo aviso de prueba.", "es")
    assert fetch.calls == 2
    assert gtts.breaker.state is BreakerState.OPEN
    assert service.health() == "degraded"

    third = await service.prepare("Tercer aviso de prueba.", "es")
    assert (third.engine, third.cached) == ("espeak", False)
    assert fetch.calls == 2  # the open circuit kept the job off the network

    # The fallback's audio is cached under the fallback engine and reused.
    again = await service.prepare("Primer aviso de prueba.", "es")
    assert (again.engine, again.cached, again.cache_key) == ("espeak", True, first.cache_key)
    assert espeak.calls == 3
    assert fetch.calls == 2
    stats = await service.cache.stats()
    assert (stats["hits"], stats["misses"]) == (1, 3)


async def test_without_fallback_the_job_gets_a_transient_error(
    settings: Settings, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    config = _gtts_settings(settings, tmp_path, TTS_FALLBACK_ENGINE="")
    service = SpeechService(
        config, redis_client, keys_for(config), {"gtts": GttsEngine.from_settings(config)}
    )
    with pytest.raises(TTSError, match="gtts: cannot reach Google"):
        await service.prepare("Hola", "es")
    with pytest.raises(TTSError, match="gtts: cannot reach Google"):
        await service.prepare("Hola", "es")
    with pytest.raises(TTSError, match="gtts: circuit open"):
        await service.prepare("Hola", "es")
    assert (await service.cache.stats())["misses"] == 3


async def test_hanging_network_hits_the_timeout_once(
    settings: Settings, tmp_path: Path, silent_proxy: list[int]
) -> None:
    config = _gtts_settings(settings, tmp_path, GTTS_TIMEOUT=0.3, GTTS_BREAKER_THRESHOLD=1)
    gtts = GttsEngine.from_settings(config)
    request = SpeechRequest("Hola, esto es una prueba.", "es")
    with pytest.raises(TTSError, match="gtts: cannot reach Google"):
        await gtts.synthesize(request)
    assert silent_proxy == [1]
    assert gtts.breaker.state is BreakerState.OPEN
    with pytest.raises(TTSError, match="circuit open"):
        await gtts.synthesize(request)
    assert silent_proxy == [1]


async def test_bad_requests_never_reach_the_network(settings: Settings, tmp_path: Path) -> None:
    fetch = CountingFetch()
    gtts = GttsEngine.from_settings(_gtts_settings(settings, tmp_path), fetch=fetch)
    for voice in ("evil.com/x?", "attacker.example", "com.attacker.example", "COM"):
        with pytest.raises(PermanentJobError, match="invalid gtts voice"):
            await gtts.synthesize(SpeechRequest("Hola", "es", voice=voice))
    with pytest.raises(PermanentJobError, match="does not speak"):
        await gtts.synthesize(SpeechRequest("Hola", "xx"))
    assert fetch.calls == 0
    assert gtts.breaker.failures == 0
    assert gtts.supports("es")
    assert gtts.supports("fr-ca")
    assert not gtts.supports("xx")


async def test_one_voice_failing_never_opens_the_breaker_for_everyone(
    settings: Settings, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    """A client's voice whose Google domain keeps failing opens that voice's circuit only:
    everyone else's speech still reaches Google, and the engine is not reported degraded."""
    calls: list[str] = []

    def by_domain(text: str, lang: str, tld: str, timeout_s: float) -> bytes:
        calls.append(tld)
        if tld == "com.mx":
            raise OSError("this domain is down")
        return mp3

    mp3 = _silent_mp3()
    config = _gtts_settings(settings, tmp_path, TTS_FALLBACK_ENGINE="")
    gtts = GttsEngine.from_settings(config, fetch=by_domain)
    service = SpeechService(config, redis_client, keys_for(config), {"gtts": gtts})
    for n in range(3):
        with pytest.raises(TTSError, match="gtts"):
            await service.prepare(f"Aviso {n}", "es", voice="com.mx")
    assert calls == ["com.mx", "com.mx"]  # the third was kept off the network
    assert gtts.breaker_for("com.mx").state is BreakerState.OPEN
    spoken = await service.prepare("Aviso para todos", "es")
    assert spoken.engine == "gtts"
    assert calls[-1] == "com"
    assert gtts.breaker.state is BreakerState.CLOSED
    assert service.health() == "ok"


def _silent_mp3(seconds: float = 0.5) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(int(24000 * seconds), np.float32), 24000, format="MP3")
    return buffer.getvalue()
