"""What the fake phones say: a voicemail greeting, its beep, a human's "hola", and silence;
and a prompt for the callers that listen for keys.

All 8 kHz mono 16-bit WAV (what `format_wav` plays). Silence is a real audio file on purpose:
a Local-channel callee that only `Wait()`s sends no audio frames at all, and AMD() then
answers NOTSURE/TOOLONG instead of what a real line of silence gives (../shared/asterisk/
BUILD.md, cases a2/a3 against a4-a6).
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from ttsqueue.tts.audio import NARROWBAND_RATE
from ttsqueue.tts.convert import convert_for_asterisk

GREETING_TEXT = (
    "Hola, se ha comunicado con el buzón de voz de Ana María. "
    "En este momento no puedo contestar, deje su mensaje después del tono."
)
HUMAN_TEXT = "¿Hola?"
# What a caller that listens for keys plays (SPEC §12's prompt); fake-probe's Read() uses it.
PROMPT_TEXT = "Presione uno para confirmar, o dos para repetir el mensaje."
BEEP_S = 0.6
SOUNDS = ("greeting", "hola", "beep", "silence", "prompt")
SILENCE_S = 20.0


@functools.cache  # the same few sentences for every instance of a test run
def _speak(text: str) -> bytes:
    done = subprocess.run(
        ["espeak-ng", "-v", "es", "--stdout", text],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return convert_for_asterisk(done.stdout).wav


def _tone(seconds: float, hz: float, level: float) -> np.ndarray:
    t = np.arange(int(seconds * NARROWBAND_RATE)) / NARROWBAND_RATE
    return (level * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _write(path: Path, samples: np.ndarray) -> None:
    sf.write(path, samples, NARROWBAND_RATE, subtype="PCM_16", format="WAV")


def write_sounds(directory: Path) -> dict[str, Path]:
    """The fake phones' sounds in `directory`; paths without extension, as Playback() wants."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "greeting.wav").write_bytes(_speak(GREETING_TEXT))
    (directory / "hola.wav").write_bytes(_speak(HUMAN_TEXT))
    (directory / "prompt.wav").write_bytes(_speak(PROMPT_TEXT))
    _write(directory / "beep.wav", _tone(BEEP_S, 1000.0, 0.5))
    _write(directory / "silence.wav", np.zeros(int(SILENCE_S * NARROWBAND_RATE), np.float32))
    return {name: directory / name for name in SOUNDS}
