"""espeak-ng for real: voice list, Spanish synthesis, errors, timeouts and cancellation."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import pytest
import soundfile as sf

from ttsqueue.errors import PermanentJobError, TTSError
from ttsqueue.tts.base import SpeechRequest
from ttsqueue.tts.catalog import espeak_languages
from ttsqueue.tts.convert import convert_for_asterisk
from ttsqueue.tts.espeak import EspeakEngine

SPANISH = "Buenos días. Le recordamos su cita médica de mañana a las ocho y treinta."


@pytest.fixture
async def espeak() -> EspeakEngine:
    return await EspeakEngine.create()


def _children() -> set[int]:
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            listed = (task / "children").read_text()
        except FileNotFoundError:
            continue  # a thread (e.g. of the executor) that ended while we looked
        pids.update(int(pid) for pid in listed.split())
    return pids


def test_voice_list_is_loaded(espeak: EspeakEngine) -> None:
    assert {"es", "es-419", "en", "fr"} <= espeak.languages
    assert espeak.supports("es")
    assert espeak.supports("ES")
    assert not espeak.supports("xx")
    assert espeak.supports_voice("es+f3")
    assert not espeak.supports_voice("es;reboot")


async def test_spanish_text_is_spoken_and_converted(espeak: EspeakEngine) -> None:
    audio = await espeak.synthesize(SpeechRequest(SPANISH, "es"))
    assert audio.engine == "espeak"
    raw = sf.info(io.BytesIO(audio.data))
    assert (raw.samplerate, raw.channels) == (22050, 1)
    assert raw.frames > 22050  # over a second of speech
    converted = convert_for_asterisk(audio.data, wideband=True)
    info = sf.info(io.BytesIO(converted.wav))
    assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")
    espeak_seconds = raw.frames / raw.samplerate
    assert abs(converted.duration_s - espeak_seconds) < 0.005
    assert converted.sln16 is not None
    assert abs(len(converted.sln16) / 2 / 16000 - espeak_seconds) < 0.005


async def test_text_that_looks_like_options_is_spoken(espeak: EspeakEngine) -> None:
    audio = await espeak.synthesize(SpeechRequest("--help -v en; rm -rf /", "es"))
    assert sf.info(io.BytesIO(audio.data)).frames > 0


async def test_voice_and_variant(espeak: EspeakEngine) -> None:
    plain = await espeak.synthesize(SpeechRequest("Hola", "es"))
    female = await espeak.synthesize(SpeechRequest("Hola", "es", voice="es-419+f3"))
    assert plain.data != female.data


async def test_unknown_voice_is_refused_before_running(espeak: EspeakEngine) -> None:
    with pytest.raises(PermanentJobError, match="no voice"):
        await espeak.synthesize(SpeechRequest("Hola", "es", voice="klingon-x"))


async def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TTSError, match="not found: install the espeak-ng package"):
        await EspeakEngine.create(binary=str(tmp_path / "espeak-ng"))


async def test_failing_binary_reports_exit_code_and_stderr(
    espeak: EspeakEngine, tmp_path: Path
) -> None:
    broken = tmp_path / "espeak-ng"
    broken.write_text("#!/bin/sh\necho 'voice data missing' >&2\nexit 3\n")
    broken.chmod(0o755)
    engine = EspeakEngine(espeak.catalog, binary=str(broken))
    with pytest.raises(TTSError, match=r"exit 3\): voice data missing"):
        await engine.synthesize(SpeechRequest("Hola", "es"))


async def test_timeout_kills_the_process(espeak: EspeakEngine, tmp_path: Path) -> None:
    slow = tmp_path / "espeak-ng"
    slow.write_text("#!/bin/sh\nexec sleep 30\n")
    slow.chmod(0o755)
    engine = EspeakEngine(espeak.catalog, binary=str(slow), timeout_s=0.2)
    before = _children()
    with pytest.raises(TTSError, match=r"timed out after 0\.2 s"):
        await engine.synthesize(SpeechRequest("Hola", "es"))
    assert _children() == before


async def test_cancellation_kills_the_process(espeak: EspeakEngine, tmp_path: Path) -> None:
    slow = tmp_path / "espeak-ng"
    slow.write_text("#!/bin/sh\nexec sleep 30\n")
    slow.chmod(0o755)
    engine = EspeakEngine(espeak.catalog, binary=str(slow))
    before = _children()
    task = asyncio.create_task(engine.synthesize(SpeechRequest("Hola", "es")))
    for _ in range(500):  # until the child process exists
        if _children() != before:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _children() == before


def test_the_shipped_catalog_is_what_espeak_speaks(espeak: EspeakEngine) -> None:
    """The API validates espeak languages from a list shipped with the package (it never
    starts espeak-ng): that list is exactly what the installed espeak-ng reports."""
    assert espeak_languages() == espeak.languages
