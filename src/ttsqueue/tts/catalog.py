"""What each speech engine speaks, known without starting any engine: the API validates
languages from here (a worker still checks its own engines when it speaks)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from gtts.accents import accents
from gtts.lang import tts_langs

from ttsqueue.config import EngineName, Settings
from ttsqueue.errors import ConfigError, TTSError
from ttsqueue.tts.piper import VoiceInfo

# Every Google Translate domain gTTS knows; `us` is in its documentation's accent table.
GTTS_VOICES = frozenset(accents) | {"us"}


def valid_tld(tld: str) -> bool:
    """One of the Google domains gTTS lists, such as `com` or `com.mx` (exact, lower case)."""
    return tld in GTTS_VOICES


@cache
def espeak_languages() -> frozenset[str]:
    text = resources.files("ttsqueue.tts").joinpath("espeak_languages.txt").read_text("utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


@cache
def gtts_languages() -> frozenset[str]:
    return frozenset(code.lower() for code in tts_langs())


def language_catalog(settings: Settings) -> dict[str, set[str]]:
    """Engine name -> language codes it speaks (lower case); piper only with PIPER_MODEL,
    whose voice file says which languages it speaks (ConfigError when it cannot be read)."""
    catalog = {
        EngineName.GTTS.value: set(gtts_languages()),
        EngineName.ESPEAK.value: set(espeak_languages()),
    }
    if settings.PIPER_MODEL is not None:
        try:
            catalog[EngineName.PIPER.value] = set(VoiceInfo.read(settings.PIPER_MODEL).languages)
        except TTSError as exc:
            raise ConfigError(f"PIPER_MODEL: {exc}") from exc
    return catalog
