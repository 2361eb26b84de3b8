"""Conversion of engine output to WAV 8000 Hz mono PCM_16 (+ raw 16 kHz .sln16)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ttsqueue.errors import PermanentJobError
from ttsqueue.tts.audio import atomic_write
from ttsqueue.tts.convert import convert_for_asterisk


def _tone(rate: int, seconds: float, channels: int = 1, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    mono = amplitude * np.sin(2 * np.pi * 440 * t)
    return np.repeat(mono[:, None], channels, axis=1).astype(np.float32)


def _encode(samples: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def _assert_asterisk_wav(wav: bytes, expected_s: float, tolerance_s: float = 0.005) -> None:
    info = sf.info(io.BytesIO(wav))
    assert (info.format, info.subtype) == ("WAV", "PCM_16")
    assert info.samplerate == 8000
    assert info.channels == 1
    assert abs(info.duration - expected_s) < tolerance_s


def test_espeak_like_22050_wav() -> None:
    data = _encode(_tone(22050, 1.5), 22050, "WAV", "PCM_16")
    out = convert_for_asterisk(data)
    _assert_asterisk_wav(out.wav, 1.5)
    assert abs(out.duration_s - 1.5) < 0.005
    assert out.sln16 is None


def test_stereo_44100_is_mixed_down() -> None:
    left_right = _tone(44100, 2.0, channels=2)
    left_right[:, 1] = 0.0  # right channel silent: the mix halves the level
    out = convert_for_asterisk(_encode(left_right, 44100, "WAV", "FLOAT"))
    _assert_asterisk_wav(out.wav, 2.0)
    samples, _ = sf.read(io.BytesIO(out.wav), dtype="float32")
    peak = float(np.abs(samples[800:-800]).max())
    assert 0.2 < peak < 0.3


def test_mp3_input() -> None:
    mp3 = _encode(_tone(24000, 1.0), 24000, "MP3")
    assert mp3[:3] == b"ID3" or mp3[0] == 0xFF
    out = convert_for_asterisk(mp3)
    # MP3 adds encoder delay/padding of a few frames.
    _assert_asterisk_wav(out.wav, 1.0, tolerance_s=0.1)


def test_wideband_sln16_is_raw_16khz() -> None:
    out = convert_for_asterisk(_encode(_tone(22050, 1.25), 22050, "WAV"), wideband=True)
    assert out.sln16 is not None
    assert len(out.sln16) % 2 == 0
    assert abs(len(out.sln16) / 2 - 1.25 * 16000) <= 2
    raw = np.frombuffer(out.sln16, dtype="<i2")
    assert 12000 < int(np.abs(raw).max()) < 20000  # amplitude 0.5 survives the resampling


def test_full_scale_input_is_clipped_not_wrapped() -> None:
    square = np.sign(_tone(22050, 0.5, amplitude=1.0)).astype(np.float32)
    out = convert_for_asterisk(_encode(square, 22050, "WAV", "FLOAT"), wideband=True)
    samples, _ = sf.read(io.BytesIO(out.wav), dtype="int16")
    # Resampling a square wave overshoots; a wrap-around would show as sign flips at the peaks.
    assert int(samples.max()) == 32767
    assert int(samples.min()) == -32768
    assert out.sln16 is not None


@pytest.mark.parametrize("data", [b"", b"not audio at all", b"RIFF\x00\x00\x00\x00WAVE"])
def test_unreadable_audio_is_a_permanent_error(data: bytes) -> None:
    with pytest.raises(PermanentJobError, match="audio"):
        convert_for_asterisk(data)


def test_empty_audio_is_refused() -> None:
    with pytest.raises(PermanentJobError, match="empty"):
        convert_for_asterisk(_encode(np.zeros((0, 1), np.float32), 8000, "WAV"))


def test_atomic_write_replaces_whole_file_readable_by_others(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "msg.wav"
    atomic_write(target, b"first")
    atomic_write(target, b"second version")
    assert target.read_bytes() == b"second version"
    assert target.stat().st_mode & 0o777 == 0o644
    assert os.listdir(target.parent) == ["msg.wav"]  # no temp file left behind


def test_atomic_write_failure_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "dir-in-the-way"
    target.mkdir()
    (target / "child").write_bytes(b"x")
    with pytest.raises(OSError, match="directory"):
        atomic_write(target, b"data")  # cannot replace a non-empty directory
    assert sorted(os.listdir(tmp_path)) == ["dir-in-the-way"]
