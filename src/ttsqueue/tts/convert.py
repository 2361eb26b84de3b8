"""Convert engine output to what Asterisk plays natively, in process (libsndfile + soxr).

numpy, libsndfile and soxr are loaded by whoever imports this module: the speech service does
so on its first synthesis, in the conversion's thread, so that a worker whose speech all comes
from the cache never loads them. Blocking: call from async code through `asyncio.to_thread`.
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from ttsqueue.errors import PermanentJobError
from ttsqueue.tts.audio import NARROWBAND_RATE, WIDEBAND_RATE, ConvertedAudio

FloatArray = npt.NDArray[np.float32]


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
