"""Writing audio files for Asterisk: whole or not at all, with a mode Asterisk can read.

`ConvertedAudio` is what `tts/convert.py` makes of an engine's output: WAV 8000 Hz mono 16-bit
PCM for `format_wav`, and `.sln16` (headerless 16 kHz signed 16-bit little-endian) for
wideband channels. The functions here are blocking: call them from async code through
`asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

NARROWBAND_RATE = 8000
WIDEBAND_RATE = 16000


@dataclass(frozen=True, slots=True)
class ConvertedAudio:
    wav: bytes  # WAV, 8000 Hz, mono, PCM_16
    duration_s: float
    sln16: bytes | None = None  # raw 16 kHz s16le, when wideband was asked


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
