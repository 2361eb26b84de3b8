"""Piper: neural offline synthesis from a voice file (`<name>.onnx` beside `<name>.onnx.json`).

piper-tts is optional (`pip install 'ttsqueue[piper]'`) and imported only when `PIPER_MODEL` is
set. The voice's `.onnx.json` is read at start-up (language, sample rate, speakers); the model
itself is loaded on first use, so an API process that only validates languages stays light.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttsqueue.errors import PermanentJobError, TTSError
from ttsqueue.tts.base import SpeechAudio, SpeechRequest

if TYPE_CHECKING:
    from piper import PiperVoice

INSTALL_HINT = "install it with `pip install 'ttsqueue[piper]'` (PyPI package piper-tts)"


@dataclass(frozen=True, slots=True)
class VoiceInfo:
    """What a voice's `.onnx.json` says about it."""

    model: Path
    config: Path
    languages: frozenset[str]  # e.g. {"es", "es-mx"}
    sample_rate: int
    speakers: dict[str, int]

    @classmethod
    def read(cls, model: Path) -> VoiceInfo:
        """Raises TTSError naming the file when the voice is missing or malformed."""
        if model.suffix == ".json":
            raise TTSError(f"name the voice's .onnx file, not its configuration ({model})")
        config = model.with_name(model.name + ".json")
        for path in (model, config):
            if not path.is_file():
                raise TTSError(f"piper voice file {path} not found")
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
            sample_rate = int(data["audio"]["sample_rate"])
            speakers = {str(k): int(v) for k, v in (data.get("speaker_id_map") or {}).items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TTSError(f"piper voice config {config} is unreadable: {exc!r}") from exc
        languages = _languages(data)
        if not languages:
            raise TTSError(f"piper voice config {config} names no language")
        return cls(model, config, languages, sample_rate, speakers)


def _languages(data: dict[str, Any]) -> frozenset[str]:
    """`language.code` "es_MX" gives {"es", "es-mx"}; older voices only have `espeak.voice`."""
    found: set[str] = set()
    language = data.get("language")
    code = language.get("code") if isinstance(language, dict) else None
    if not isinstance(code, str):
        espeak = data.get("espeak")
        code = espeak.get("voice") if isinstance(espeak, dict) else None
    if isinstance(code, str) and code.strip():
        locale = code.strip().lower().replace("_", "-")
        found.update({locale, locale.split("-", 1)[0]})
    return frozenset(found)


def _require_piper() -> None:
    try:
        import piper  # noqa: F401
    except ImportError:
        raise TTSError(f"the piper engine needs piper-tts: {INSTALL_HINT}") from None


class PiperEngine:
    name = "piper"

    def __init__(self, info: VoiceInfo) -> None:
        self.info = info
        self._voice: PiperVoice | None = None
        # One synthesis at a time: onnxruntime already spreads one over every core. The
        # asyncio lock queues jobs without holding threads; the thread lock keeps the rule
        # when a canceled job leaves its thread running.
        self._queue = asyncio.Lock()
        self._busy = threading.Lock()

    @classmethod
    def create(cls, model: Path) -> PiperEngine:
        """Check that piper-tts is installed and the voice is readable; raises TTSError."""
        _require_piper()
        return cls(VoiceInfo.read(model))

    @property
    def languages(self) -> frozenset[str]:
        return self.info.languages

    def supports(self, language: str) -> bool:
        return language.lower().replace("_", "-") in self.info.languages

    def supports_voice(self, voice: str) -> bool:
        """Voices are the speaker names of a multi-speaker model."""
        return voice in self.info.speakers

    async def synthesize(self, request: SpeechRequest) -> SpeechAudio:
        speaker = None
        if request.voice is not None:
            speaker = self.info.speakers.get(request.voice)
            if speaker is None:
                raise PermanentJobError(
                    f"piper voice {self.info.model.name} has no speaker {request.voice!r}",
                    reason="invalid_voice",
                )
        async with self._queue:
            wav = await asyncio.to_thread(self._render, request.text, speaker)
        return SpeechAudio(data=wav, engine=self.name)

    def _render(self, text: str, speaker: int | None) -> bytes:
        with self._busy:
            try:
                from piper import SynthesisConfig

                voice = self._load()
                chunks = list(voice.synthesize(text, SynthesisConfig(speaker_id=speaker)))
            except TTSError:
                raise
            except Exception as exc:  # onnxruntime and the phonemizer raise many kinds
                raise TTSError(f"piper failed: {type(exc).__name__}: {exc}") from exc
        pcm = b"".join(chunk.audio_int16_bytes for chunk in chunks)
        if not pcm:
            raise TTSError("piper produced no audio (nothing speakable in the text)")
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(chunks[0].sample_rate)
            out.writeframes(pcm)
        return buffer.getvalue()

    def _load(self) -> PiperVoice:
        if self._voice is None:
            try:
                from piper import PiperVoice
            except ImportError:
                raise TTSError(f"piper-tts is not installed: {INSTALL_HINT}") from None
            self._voice = PiperVoice.load(self.info.model, config_path=self.info.config)
        return self._voice
