"""Build the configured speech engines once at start-up, and report what each one speaks."""

from __future__ import annotations

from collections.abc import Mapping

from ttsqueue.config import EngineName, Settings
from ttsqueue.errors import ConfigError, TTSError
from ttsqueue.logs import get_logger
from ttsqueue.tts.base import SpeechEngine
from ttsqueue.tts.espeak import EspeakEngine
from ttsqueue.tts.gtts_engine import GttsEngine
from ttsqueue.tts.piper import PiperEngine

log = get_logger("ttsqueue.tts")


def _configured(settings: Settings) -> set[EngineName]:
    wanted = {settings.TTS_ENGINE}
    if settings.TTS_FALLBACK_ENGINE is not None:
        wanted.add(settings.TTS_FALLBACK_ENGINE)
    return wanted


async def build_engines(settings: Settings) -> dict[str, SpeechEngine]:
    """gtts, espeak (when espeak-ng is installed) and piper (when PIPER_MODEL is set); raises
    ConfigError for a configured engine that cannot work here."""
    wanted = _configured(settings)
    engines: dict[str, SpeechEngine] = {EngineName.GTTS.value: GttsEngine.from_settings(settings)}
    try:
        engines[EngineName.ESPEAK.value] = await EspeakEngine.create()
    except TTSError as exc:
        if EngineName.ESPEAK in wanted:
            raise ConfigError(
                f"espeak is configured (TTS_ENGINE / TTS_FALLBACK_ENGINE) but unusable: {exc}"
            ) from exc
        log.warning("espeak-ng unavailable", error=str(exc))
    piper = _piper(settings, wanted)
    if piper is not None:
        engines[EngineName.PIPER.value] = piper
    return engines


def _piper(settings: Settings, wanted: set[EngineName]) -> PiperEngine | None:
    if settings.PIPER_MODEL is None:
        if EngineName.PIPER in wanted:
            raise ConfigError(
                "the piper engine is configured (TTS_ENGINE / TTS_FALLBACK_ENGINE) but "
                "PIPER_MODEL is not set: point it to a voice .onnx file (docs/piper.md)"
            )
        return None
    try:
        return PiperEngine.create(settings.PIPER_MODEL)
    except TTSError as exc:
        raise ConfigError(f"PIPER_MODEL: {exc}") from exc


def supported_languages(engines: Mapping[str, SpeechEngine]) -> dict[str, set[str]]:
    """Engine name -> language codes it speaks (lower case), to validate requests."""
    return {name: set(getattr(engine, "languages", ())) for name, engine in engines.items()}
