"""The audio cache's keys: which entries could speak a job, known from its fields alone.

Pure, so that the job's record can name them when it is created (store/lifecycle.py) and the
worker's start can pin the cached one in the same Redis call, and the speech service plans
with the same keys (tts/service.py).
"""

from __future__ import annotations

import hashlib
import json
import unicodedata


def normalize_text(text: str) -> str:
    """NFC, runs of whitespace collapsed to one space, trimmed: what gets spoken and hashed."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def cache_key(engine: str, voice: str | None, language: str, text: str) -> str:
    return _digest(engine, voice, language, normalize_text(text))


def _digest(engine: str, voice: str | None, language: str, normalized: str) -> str:
    material = json.dumps([engine, voice or "", language.lower(), normalized])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


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
    normalized = normalize_text(text)
    return [
        _digest(name, step_voice, language, normalized)
        for name, step_voice in speech_candidates(engine, voice, fallback)
    ]
