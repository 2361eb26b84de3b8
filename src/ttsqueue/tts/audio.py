"""Convert engine output to what Asterisk plays natively, in process (libsndfile + soxr).

`format_wav` wants WAV 8000 Hz mono 16-bit PCM; `.sln16` is headerless 16 kHz signed 16-bit
little-endian for wideband channels. The functions here are blocking: call them from async
code through `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from ttsqueue.errors import PermanentJobError

NARROWBAND_RATE = 8000
WIDEBAND_RATE = 16000
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class ConvertedAudio:
    wav: bytes  # WAV, 8000 Hz, mono, PCM_16
    duration_s: float
    sln16: bytes | None = None  # raw 16 kHz s16le, when wideband was asked


def _decode(data: bytes) -> tuple[FloatArray, int]:
    """Any format libsndfile reads (WAV, MP3, ...) -> mono float32 samples and their rate."""
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise PermanentJobError(f"unreadable audio from engine: {exc}", reason="bad_audio") from exc
    if samples.shape[0] == 0:
        raise PermanentJobError("engine returned empty audio", reason="bad_audio")
    mono: FloatArray = samples.mean(axis=1, dtype=np.float32)
    return mono, int(rate)


def _to_int16(samples: FloatArray) -> npt.NDArray[np.int16]:
    # Resampling can overshoot full scale; clip before the cast so peaks do not wrap around.
    scaled = np.clip(samples * 32768.0, -32768.0, 32767.0)
    out: npt.NDArray[np.int16] = np.rint(scaled).astype("<i2")
    return out


def _resample(samples: FloatArray, rate_in: int, rate_out: int) -> FloatArray:
    if rate_in == rate_out:
        return samples
    out: FloatArray = soxr.resample(samples, rate_in, rate_out, quality="HQ")
    return out


def convert_for_asterisk(data: bytes, *, wideband: bool = False) -> ConvertedAudio:
    samples, rate = _decode(data)
    narrow = _to_int16(_resample(samples, rate, NARROWBAND_RATE))
    buffer = io.BytesIO()
    sf.write(buffer, narrow, NARROWBAND_RATE, format="WAV", subtype="PCM_16")
    sln16 = _to_int16(_resample(samples, rate, WIDEBAND_RATE)).tobytes() if wideband else None
    return ConvertedAudio(
        wav=buffer.getvalue(), duration_s=len(narrow) / NARROWBAND_RATE, sln16=sln16
    )


def stage_file(path: Path, data: bytes, *, mode: int = 0o644) -> Path:
    """Write `data` to a temp file beside `path`, ready for `os.replace(temp, path)`.

    The temp file lives in the same directory (same filesystem) so the rename is atomic;
    the mode is set explicitly because Asterisk usually runs as another user.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write `data` to `path` so readers see the old file or the whole new one, never a part."""
    tmp = stage_file(path, data, mode=mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
