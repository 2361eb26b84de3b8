"""Speech engines behind one small protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    text: str
    language: str
    voice: str | None = None


@dataclass(frozen=True, slots=True)
class SpeechAudio:
    """Encoded audio as the engine produced it (WAV, MP3...), to be converted for Asterisk."""

    data: bytes
    engine: str


class SpeechEngine(Protocol):
    name: str

    def supports(self, language: str) -> bool:
        """Whether this engine can speak `language` (an ISO code such as `es`)."""

    async def synthesize(self, request: SpeechRequest) -> SpeechAudio:
        """Speak the text; raises `TTSError` when the engine fails. Never blocks the loop."""
