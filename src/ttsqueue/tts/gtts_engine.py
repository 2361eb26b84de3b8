"""Google Translate TTS through gTTS: throttled, with a timeout and a circuit breaker.

gTTS is blocking (requests) and has no timeout or retry of its own, so it runs in a thread,
with a per-request timeout plus an overall deadline, paced by `GTTS_MAX_RPS`.

The `voice` is the Google domain gTTS fetches from (`translate.google.<voice>`), so it is a
host a client would otherwise choose for the worker: only the Google domains gTTS itself
lists (`gtts.accents`, plus `us`, which its documentation names for English and Spanish) are
accepted. Each voice other than the default `com` has its own circuit breaker: a domain that
fails for one client's jobs never stops everyone else's speech.
"""

from __future__ import annotations

import asyncio
import io
import math
from collections.abc import Callable

from gtts import gTTS, gTTSError
from gtts.lang import tts_langs

from ttsqueue.config import Settings
from ttsqueue.errors import PermanentJobError, TTSError
from ttsqueue.tts.base import SpeechAudio, SpeechRequest
from ttsqueue.tts.breaker import CircuitBreaker
from ttsqueue.tts.catalog import valid_tld
from ttsqueue.tts.throttle import Throttle

# Blocking fetch: (text, lang, tld, timeout_s) -> MP3 bytes. Swappable to observe calls.
Fetch = Callable[[str, str, str, float], bytes]

DEFAULT_VOICE = "com"
_CHARS_PER_REQUEST = 100  # gTTS splits text into requests of about this size


def fetch_mp3(text: str, lang: str, tld: str, timeout_s: float) -> bytes:
    buffer = io.BytesIO()
    gTTS(text, lang=lang, tld=tld, timeout=timeout_s, lang_check=False).write_to_fp(buffer)
    return buffer.getvalue()


def _describe(exc: Exception) -> str:
    if isinstance(exc, gTTSError):
        status = getattr(getattr(exc, "rsp", None), "status_code", None)
        if status == 429:
            return "rate limited by Google (429)"
        if status is None and exc.__context__ is not None:
            return f"cannot reach Google ({type(exc.__context__).__name__})"
        return str(exc) or "gTTSError"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return f"{type(exc).__name__}: {exc}"


class GttsEngine:
    name = "gtts"

    def __init__(
        self,
        *,
        timeout_s: float,
        max_rps: float,
        breaker: CircuitBreaker,
        fetch: Fetch = fetch_mp3,
    ) -> None:
        self.timeout_s = timeout_s
        # The default domain's breaker (what engine health reports); other voices get their
        # own, alike, on first use.
        self.breaker = breaker
        self._voice_breakers: dict[str, CircuitBreaker] = {DEFAULT_VOICE: breaker}
        self.throttle = Throttle(max_rps)
        self._fetch = fetch
        self._langs = {code.lower(): code for code in tts_langs()}

    @classmethod
    def from_settings(cls, settings: Settings, *, fetch: Fetch = fetch_mp3) -> GttsEngine:
        breaker = CircuitBreaker(settings.GTTS_BREAKER_THRESHOLD, settings.GTTS_BREAKER_COOLDOWN)
        return cls(
            timeout_s=settings.GTTS_TIMEOUT,
            max_rps=settings.GTTS_MAX_RPS,
            breaker=breaker,
            fetch=fetch,
        )

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self._langs)

    def supports(self, language: str) -> bool:
        return language.lower() in self._langs

    def supports_voice(self, voice: str) -> bool:
        return valid_tld(voice)

    def breaker_for(self, voice: str) -> CircuitBreaker:
        breaker = self._voice_breakers.get(voice)
        if breaker is None:
            breaker = self.breaker.twin()
            self._voice_breakers[voice] = breaker
        return breaker

    async def synthesize(self, request: SpeechRequest) -> SpeechAudio:
        lang = self._langs.get(request.language.lower())
        if lang is None:
            raise PermanentJobError(
                f"gtts does not speak {request.language!r}", reason="unsupported_language"
            )
        tld = request.voice or DEFAULT_VOICE
        if not valid_tld(tld):
            raise PermanentJobError(f"invalid gtts voice (tld) {tld!r}", reason="invalid_voice")
        breaker = self.breaker_for(tld)
        if not breaker.allow():
            wait = breaker.retry_after()
            raise TTSError(f"gtts: circuit open for {tld} (retry in {wait:.0f} s)")
        parts = max(1, math.ceil(len(request.text) / _CHARS_PER_REQUEST))
        try:
            await self.throttle.acquire(parts)
            data = await asyncio.wait_for(
                asyncio.to_thread(self._fetch, request.text, lang, tld, self.timeout_s),
                # requests' timeout is per read; bound the whole call too (DNS, several parts).
                self.timeout_s * parts + 1.0,
            )
        except Exception as exc:  # gTTS scrapes a web page: any failure is an engine failure
            breaker.record_failure()
            raise TTSError(f"gtts: {_describe(exc)}") from exc
        except BaseException:
            breaker.release()
            raise
        if not data:
            breaker.record_failure()
            raise TTSError("gtts: empty response")
        breaker.record_success()
        return SpeechAudio(data=data, engine=self.name)
