"""GttsEngine's error mapping, breaker bookkeeping and pacing, with the network fetch
replaced at the I/O boundary by functions that answer the way Google does."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pytest
import soundfile as sf
from gtts import gTTSError

from ttsqueue.errors import TTSError
from ttsqueue.tts.base import SpeechRequest
from ttsqueue.tts.breaker import BreakerState, CircuitBreaker
from ttsqueue.tts.convert import convert_for_asterisk
from ttsqueue.tts.gtts_engine import GttsEngine
from ttsqueue.tts.throttle import Throttle


@dataclass
class Response:
    status_code: int
    reason: str = ""


def _mp3(seconds: float = 0.5) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(int(24000 * seconds), np.float32), 24000, format="MP3")
    return buffer.getvalue()


def _engine(fetch: object, threshold: int = 2) -> GttsEngine:
    return GttsEngine(
        timeout_s=1.0,
        max_rps=1000,
        breaker=CircuitBreaker(threshold, cooldown=60),
        fetch=fetch,  # type: ignore[arg-type]
    )


async def test_rate_limit_is_a_transient_error_that_counts_for_the_breaker() -> None:
    def throttled(text: str, lang: str, tld: str, timeout_s: float) -> bytes:
        raise gTTSError("429 (Too Many Requests) from TTS API", response=Response(429))

    engine = _engine(throttled)
    request = SpeechRequest("Hola", "es")
    with pytest.raises(TTSError, match=r"rate limited by Google \(429\)"):
        await engine.synthesize(request)
    with pytest.raises(TTSError, match="429"):
        await engine.synthesize(request)
    assert engine.breaker.state is BreakerState.OPEN
    with pytest.raises(TTSError, match="circuit open"):
        await engine.synthesize(request)


async def test_success_returns_mp3_that_converts_and_closes_the_breaker() -> None:
    calls: list[tuple[str, str, str, float]] = []

    def google(text: str, lang: str, tld: str, timeout_s: float) -> bytes:
        calls.append((text, lang, tld, timeout_s))
        if len(calls) == 1:
            raise gTTSError("500 (Internal Server Error) from TTS API", response=Response(500))
        return _mp3()

    engine = _engine(google)
    with pytest.raises(TTSError, match="500"):
        await engine.synthesize(SpeechRequest("Hola", "zh-cn", voice="com.mx"))
    audio = await engine.synthesize(SpeechRequest("Hola", "zh-cn", voice="com.mx"))
    assert calls[-1] == ("Hola", "zh-CN", "com.mx", 1.0)  # gTTS's own spelling of the code
    assert engine.breaker.failures == 0
    assert audio.engine == "gtts"
    converted = convert_for_asterisk(audio.data)
    assert abs(converted.duration_s - 0.5) < 0.1


async def test_empty_answer_is_a_failure() -> None:
    engine = _engine(lambda text, lang, tld, timeout_s: b"")
    with pytest.raises(TTSError, match="empty response"):
        await engine.synthesize(SpeechRequest("Hola", "es"))
    assert engine.breaker.failures == 1


async def test_long_text_books_one_throttle_slot_per_google_request() -> None:
    engine = _engine(lambda text, lang, tld, timeout_s: _mp3(0.1))
    engine.throttle = Throttle(rate=1.0, clock=lambda: 100.0)  # frozen time, 1 request/s
    await engine.synthesize(SpeechRequest("palabra " * 40, "es"))  # 320 chars: 4 requests
    assert engine.throttle.reserve() == 4.0  # the next one waits for the 4 slots just used
