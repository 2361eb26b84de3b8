"""Uncached speech preparation: espeak-ng + in-process conversion, against one converter
process per file (ffmpeg, or sox when ffmpeg is absent).

    .venv/bin/python benchmarks/bench_speech.py [--runs 50]

Every run speaks a different ~100-character Spanish text, so nothing is served from a cache.
The "prepare" row is the whole uncached path of SpeechService (synthesis, conversion, atomic
write, Redis index); it is skipped when Redis is not reachable.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path

import redis.asyncio as aioredis

from ttsqueue.config import load_settings
from ttsqueue.store.factory import keys_for
from ttsqueue.tts.base import SpeechRequest
from ttsqueue.tts.convert import convert_for_asterisk
from ttsqueue.tts.espeak import EspeakEngine
from ttsqueue.tts.service import SpeechService

TARGET_MEDIAN_MS = 25.0
NUMBERS = ["cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"]


def spanish_text(run: int) -> str:
    """About 100 characters, different for every run."""
    code = " ".join(NUMBERS[int(d)] for d in f"{run:04d}")
    text = (
        f"Hola, su código de verificación es {code}. Por favor no lo comparta con nadie. Gracias."
    )
    return text[:100]


def baseline_argv() -> tuple[str, list[str]] | None:
    if shutil.which("ffmpeg"):
        return "ffmpeg", ["ffmpeg", "-loglevel", "error", "-i", "pipe:0", "-ar", "8000",
                          "-ac", "1", "-c:a", "pcm_s16le", "-f", "wav", "pipe:1"]  # fmt: skip
    if shutil.which("sox"):
        return "sox", ["sox", "-V1", "-t", "wav", "-", "-r", "8000", "-c", "1", "-b", "16",
                       "-e", "signed-integer", "-t", "wav", "-"]  # fmt: skip
    return None


async def convert_with_process(argv: list[str], wav: bytes) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(wav)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {err.decode(errors='replace')}")
    return out


async def timed(action: Awaitable[object]) -> float:
    started = time.perf_counter()
    await action
    return (time.perf_counter() - started) * 1000


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


async def bench_engine(runs: int, rows: dict[str, list[float]]) -> None:
    espeak = await EspeakEngine.create()
    baseline = baseline_argv()
    for run in range(runs):
        request = SpeechRequest(spanish_text(run), "es")
        started = time.perf_counter()
        audio = await espeak.synthesize(request)
        rows["espeak-ng synthesis"].append((time.perf_counter() - started) * 1000)
        rows["convert: soundfile+soxr"].append(
            await timed(asyncio.to_thread(convert_for_asterisk, audio.data))
        )
        if baseline is not None:
            name, argv = baseline
            rows[f"convert: {name} process"].append(
                await timed(convert_with_process(argv, audio.data))
            )
    for run in range(runs):
        rows["espeak + soxr (sum)"].append(
            rows["espeak-ng synthesis"][run] + rows["convert: soundfile+soxr"][run]
        )


async def bench_service(runs: int, rows: dict[str, list[float]]) -> str | None:
    with tempfile.TemporaryDirectory() as audio_dir:
        settings = load_settings(
            REDIS_PREFIX=f"bench:{uuid.uuid4().hex[:8]}:",
            AUDIO_DIR=Path(audio_dir),
            TTS_ENGINE="espeak",
            TTS_FALLBACK_ENGINE="",
        )
        client = aioredis.from_url(settings.REDIS_URL, decode_responses=True)
        try:
            await client.ping()
        except (OSError, aioredis.RedisError) as exc:
            await client.aclose()
            return f"prepare row skipped: Redis unreachable ({exc})"
        try:
            service = SpeechService(
                settings, client, keys_for(settings), {"espeak": await EspeakEngine.create()}
            )
            for run in range(runs):
                text = spanish_text(runs + run)
                rows["SpeechService.prepare (uncached)"].append(
                    await timed(service.prepare(text, "es"))
                )
        finally:
            async for key in client.scan_iter(match=f"{settings.REDIS_PREFIX}*"):
                await client.delete(key)
            await client.aclose()
    return None


def print_table(rows: dict[str, list[float]], runs: int) -> None:
    width = max(len(name) for name in rows) + 2
    print(f"\nUncached speech for a 100-character Spanish text, {runs} runs (ms)\n")
    print(f"{'step':<{width}}{'median':>9}{'p95':>9}")
    for name, samples in rows.items():
        if samples:
            median, p95 = summary(samples)
            print(f"{name:<{width}}{median:>9.2f}{p95:>9.2f}")


def print_verdict(rows: dict[str, list[float]]) -> bool:
    soxr_median, _ = summary(rows["convert: soundfile+soxr"])
    for name, samples in rows.items():
        if name.endswith("process") and samples:
            ratio = summary(samples)[0] / soxr_median
            print(f"\nconversion in process is {ratio:.1f}x faster than {name}")
    headline = rows.get("SpeechService.prepare (uncached)") or rows["espeak + soxr (sum)"]
    median = summary(headline)[0]
    ok = median <= TARGET_MEDIAN_MS
    verdict = "meets" if ok else "MISSES"
    print(f"uncached median {median:.2f} ms {verdict} the target of {TARGET_MEDIAN_MS:.0f} ms")
    return ok


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=50)
    runs = parser.parse_args().runs
    rows: dict[str, list[float]] = {
        "espeak-ng synthesis": [],
        "convert: soundfile+soxr": [],
        "convert: ffmpeg process": [],
        "convert: sox process": [],
        "espeak + soxr (sum)": [],
        "SpeechService.prepare (uncached)": [],
    }
    await bench_engine(runs, rows)
    note = await bench_service(runs, rows)
    print_table(rows, runs)
    if note:
        print(note)
    return 0 if print_verdict(rows) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
