"""espeak-ng: offline synthesis in a subprocess (text on stdin, WAV 22050 Hz on stdout)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from ttsqueue.errors import PermanentJobError, TTSError
from ttsqueue.tts.base import SpeechAudio, SpeechRequest

DEFAULT_BINARY = "espeak-ng"
_VOICE_SHAPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}(\+[A-Za-z0-9_-]{1,32})?$")
_STDERR_LIMIT = 300


@dataclass(frozen=True, slots=True)
class VoiceCatalog:
    """What `espeak-ng --voices` reports: language codes, voice files and variants."""

    languages: frozenset[str]
    voice_files: frozenset[str]
    variants: frozenset[str]

    @classmethod
    def parse(cls, voices_listing: str, variants_listing: str = "") -> VoiceCatalog:
        languages: set[str] = set()
        files: set[str] = set()
        for fields in _rows(voices_listing):
            languages.add(fields[1].lower())
            files.add(fields[4].lower())
            # Trailing "(es-mx 6)(es 6)": other languages this voice also speaks.
            others = " ".join(fields[5:])
            languages.update(m.lower() for m in re.findall(r"\(([^\s()]+) \d+\)", others))
        variants = {f[4].removeprefix("!v/") for f in _rows(variants_listing)}
        return cls(frozenset(languages), frozenset(files), frozenset(variants))

    def knows_voice(self, voice: str) -> bool:
        if not _VOICE_SHAPE.match(voice):
            return False
        base, _, variant = voice.partition("+")
        if variant and variant not in self.variants:
            return False
        return base.lower() in self.languages or base.lower() in self.voice_files


def _rows(listing: str) -> list[list[str]]:
    lines = listing.splitlines()[1:]  # first line is the column header
    return [fields for line in lines if len(fields := line.split()) >= 5]


async def _run(argv: list[str], stdin: bytes | None, timeout_s: float) -> bytes:
    """Run argv (no shell); return stdout, or raise TTSError naming what went wrong."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        raise TTSError(
            f"{argv[0]} not found: install the espeak-ng package (apt-get install espeak-ng)"
        ) from None
    except OSError as exc:
        raise TTSError(f"cannot start {argv[0]}: {exc}") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout_s)
    except TimeoutError:
        raise TTSError(f"{argv[0]} timed out after {timeout_s:g} s") from None
    finally:
        if proc.returncode is None:  # timed out or canceled: never leave it running
            proc.kill()
            await asyncio.shield(proc.wait())
    if proc.returncode != 0:
        detail = err.decode("utf-8", "replace").strip()[:_STDERR_LIMIT] or "no message"
        raise TTSError(f"{argv[0]} failed (exit {proc.returncode}): {detail}")
    return out


class EspeakEngine:
    name = "espeak"

    def __init__(
        self, catalog: VoiceCatalog, *, binary: str = DEFAULT_BINARY, timeout_s: float = 30.0
    ) -> None:
        self.catalog = catalog
        self.binary = binary
        self.timeout_s = timeout_s

    @classmethod
    async def create(cls, *, binary: str = DEFAULT_BINARY, timeout_s: float = 30.0) -> EspeakEngine:
        """Read the voice list once; raises TTSError when espeak-ng is missing or broken."""
        voices = await _run([binary, "--voices"], None, timeout_s)
        variants = await _run([binary, "--voices=variant"], None, timeout_s)
        catalog = VoiceCatalog.parse(
            voices.decode("utf-8", "replace"), variants.decode("utf-8", "replace")
        )
        if not catalog.languages:
            raise TTSError(f"{binary} --voices listed no voices")
        return cls(catalog, binary=binary, timeout_s=timeout_s)

    @property
    def languages(self) -> frozenset[str]:
        return self.catalog.languages

    def supports(self, language: str) -> bool:
        return language.lower() in self.catalog.languages

    def supports_voice(self, voice: str) -> bool:
        return self.catalog.knows_voice(voice)

    async def synthesize(self, request: SpeechRequest) -> SpeechAudio:
        voice = request.voice or request.language.lower()
        if not self.catalog.knows_voice(voice):
            raise PermanentJobError(f"espeak-ng has no voice {voice!r}", reason="invalid_voice")
        argv = [self.binary, "--stdout", "-v", voice]
        wav = await _run(argv, request.text.encode("utf-8"), self.timeout_s)
        if len(wav) <= 44:  # a bare WAV header: nothing was spoken
            raise TTSError(f"{self.binary} produced no audio for voice {voice!r}")
        return SpeechAudio(data=wav, engine=self.name)
