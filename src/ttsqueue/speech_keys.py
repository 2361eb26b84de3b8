"""The audio cache's keys: which entries could speak a job, known from its fields alone.

Pure, so that the job's record can name them when it is created (store/lifecycle.py) and the
worker's start can pin the cached one in the same Redis call, and the speech service plans
with the same keys (tts/service.py).

A key is the SHA-256 of `json.dumps([engine, voice or "", language.lower(), normalized text])`,
the form entries already on disk were named with. The JSON is put together from its strings,
each quoted by the `json` module's own ASCII quoting (what `json.dumps` uses by default): the
same bytes for about a fifth of the work of `json.dumps` on the list, which every
`POST /tts/call` pays. tests/unit/test_audio_keys.py compares the two.
"""

from __future__ import annotations

import hashlib
import unicodedata
from json.encoder import encode_basestring_ascii as _quoted


def normalize_text(text: str) -> str:
    """NFC, runs of whitespace collapsed to one space, trimmed: what gets spoken and hashed."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def cache_key(engine: str, voice: str | None, language: str, text: str) -> str:
    return _digest(_quoted(engine), _quoted(voice or ""), _language(language), _text(text))


def speech_candidates(
    engine: str, voice: str | None, fallback: str | None
) -> list[tuple[str, str | None]]:
    """(engine, voice) in the order they are tried: the job's engine with its voice, then the
    fallback engine with its default voice (voices are engine-specific)."""
    candidates = [(engine, voice)]
    if fallback is not None and fallback != engine:
        candidates.append((fallback, None))
    return candidates


def planned_keys(
    text: str, language: str, voice: str | None, engine: str, fallback: str | None
) -> list[str]:
    """The cache keys of `speech_candidates`, in the same order."""
    spoken, lang = _text(text), _language(language)
    return [
        _digest(_quoted(name), _quoted(step_voice or ""), lang, spoken)
        for name, step_voice in speech_candidates(engine, voice, fallback)
    ]


def _language(language: str) -> str:
    return _quoted(language.lower())


def _text(text: str) -> str:
    return _quoted(normalize_text(text))


def _digest(engine: str, voice: str, language: str, text: str) -> str:
    """The key of four strings already quoted as JSON."""
    material = f"[{engine}, {voice}, {language}, {text}]"
    return hashlib.sha256(material.encode("ascii")).hexdigest()
