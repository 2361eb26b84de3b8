"""Build the configured speech engines once at start-up, and report what each one speaks."""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from ttsqueue.config import EngineName, Settings
from ttsqueue.errors import ConfigError, TTSError
from ttsqueue.tts.base import SpeechEngine
from ttsqueue.tts.espeak import EspeakEngine
from ttsqueue.tts.gtts_engine import GttsEngine

log = structlog.get_logger(__name__)


def _configured(settings: Settings) -> set[EngineName]:
    wanted = {settings.TTS_ENGINE}
    if settings.TTS_FALLBACK_ENGINE is not None:
        wanted.add(settings.TTS_FALLBACK_ENGINE)
    return wanted


async def build_engines(settings: Settings) -> dict[str, SpeechEngine]:
    """gtts and espeak (when espeak-ng is installed); raises ConfigError for a configured
    engine that cannot work here."""
    wanted = _configured(settings)
    if settings.PIPER_MODEL is not None or EngineName.PIPER in wanted:
        raise ConfigError(
            "the piper engine is not available in this version: unset PIPER_MODEL and use "
            "TTS_ENGINE / TTS_FALLBACK_ENGINE = gtts or espeak"
        )
    engines: dict[str, SpeechEngine] = {EngineName.GTTS.value: GttsEngine.from_settings(settings)}
    try:
        engines[EngineName.ESPEAK.value] = await EspeakEngine.create()
    except TTSError as exc:
        if EngineName.ESPEAK in wanted:
            raise ConfigError(
                f"espeak is configured (TTS_ENGINE / TTS_FALLBACK_ENGINE) but unusable: {exc}"
            ) from exc
        log.warning("espeak_unavailable", error=str(exc))
    return engines


def supported_languages(engines: Mapping[str, SpeechEngine]) -> dict[str, set[str]]:
    """Engine name -> language codes it speaks (lower case), to validate requests."""
    return {name: set(getattr(engine, "languages", ())) for name, engine in engines.items()}
