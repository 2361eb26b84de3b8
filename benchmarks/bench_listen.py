"""What listening costs a call, on a real Asterisk, from Asterisk's own timestamps.

    ASTERISK_BIN=... .venv/bin/python benchmarks/bench_listen.py [--calls 5]

A private Asterisk (tests/asterisk: the shipped dialplan, the fake phones) and one in-process
worker (DIALER=callfile) place `--calls` calls per case. Every figure comes from the times the
dialplan itself reported (`STRFTIME(,,%s.%3q)` in the call's status file), never from the
worker's clock:

- Answering machine detection: the median time from AMD()'s start to its verdict per callee
  type (a voicemail greeting, a person saying "¿Hola?", silence), and for a voicemail drop the
  time from answer to the start of the message (greeting + beep + 1.5 s of silence).
- Keypress confirmation: the median time from answer to the end of the call's part (the
  confirmation's result; for the baseline, the end of the plain message) for the same callee
  with and without `confirm`, and the difference: what the confirmation adds per call (or
  saves, when the callee presses during the message: Read() stops it).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import redis.asyncio as aioredis

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks._common import machine_info, print_table, write_result  # noqa: E402

from tests.asterisk.fake_phones import number  # noqa: E402
from tests.asterisk.helpers import call_id, wait_jobs  # noqa: E402
from tests.asterisk.install import find_asterisk  # noqa: E402
from tests.asterisk.instance import PrivateAsterisk  # noqa: E402
from tests.conftest import delete_topology  # noqa: E402
from tests.integration.test_pipeline import publish_job, running_worker  # noqa: E402
from ttsqueue.broker.topology import declare_topology  # noqa: E402
from ttsqueue.config import Settings, load_settings  # noqa: E402
from ttsqueue.dialer.callfile.format import parse_report  # noqa: E402
from ttsqueue.domain import ConfirmOptions, MachineDetection  # noqa: E402
from ttsqueue.store.factory import build_store  # noqa: E402

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"
REDIS_URL = "redis://127.0.0.1:6379/0"
TEXT = "Le recordamos su cita de mañana a las nueve en la sede norte."
PROMPT = "Presione uno para confirmar."

AMD_CASES = {
    "voicemail greeting (0005)": "0005",
    'person, "¿Hola?" (0013)': "0013",
    "silence (0014)": "0014",
}
CONFIRM_CASES = {
    "key during the message (0004)": "0004",
    "key after the message (0011)": "0011",
    "no key (0006)": "0006",
}


def _settings(pbx: PrivateAsterisk, audio: Path, tag: str) -> Settings:
    return load_settings(
        RABBITMQ_URL=RABBITMQ_URL,
        REDIS_URL=REDIS_URL,
        REDIS_PREFIX=f"bench:{tag}:",
        QUEUE_PREFIX=f"bench{tag}_",
        AUDIO_DIR=audio,
        TTS_ENGINE="espeak",
        TTS_FALLBACK_ENGINE="",
        WORKER_CONCURRENCY=16,
        CALLS_PER_SECOND=50.0,
        MAX_CONCURRENT_CALLS=32,
        CALL_RING_TIMEOUT=5,
        LOG_LEVEL="WARNING",
        **pbx.callfile_settings(),
    )


def _report(pbx: PrivateAsterisk, job_id: str) -> dict[str, float]:
    text = (pbx.spool / "outgoing_done" / f"{call_id(job_id)}.status").read_text()
    found: dict[str, float] = {}
    for key, value in parse_report(text).items():
        try:
            found[key] = float(value)
        except ValueError:
            continue
    return found


def _median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 1)


async def _run(pbx: PrivateAsterisk, calls: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="bench-listen-") as tmp:
        settings = _settings(pbx, Path(tmp) / "audio", tag)
        broker = await aio_pika.connect_robust(RABBITMQ_URL)
        redis = aioredis.from_url(REDIS_URL, decode_responses=True)
        store = build_store(redis, settings).jobs
        try:
            async with broker.channel() as channel:
                names = await declare_topology(channel, settings)
            jobs: dict[tuple[str, str], list[str]] = {}

            async def place(key: tuple[str, str], ending: str, **extra: Any) -> None:
                for n in range(calls):
                    phone = number(ending, f"30{n + 1}555")
                    job_id = await publish_job(
                        broker, settings, store, phone=phone, max_retries=0, text=TEXT, **extra
                    )
                    jobs.setdefault(key, []).append(job_id)

            for name, ending in AMD_CASES.items():
                await place(("amd", name), ending, machine_detection=MachineDetection.HANGUP)
            await place(("drop", "voicemail drop (0005)"), "0005", machine_detection="message")
            confirm = ConfirmOptions(max_repeats=0, timeout_s=3, prompt=PROMPT)
            for name, ending in CONFIRM_CASES.items():
                await place(("plain", name), ending)
                await place(("confirm", name), ending, confirm=confirm)
            async with running_worker(settings):
                await wait_jobs(store, [j for ids in jobs.values() for j in ids], timeout=600)
            reports = {key: [_report(pbx, j) for j in ids] for key, ids in jobs.items()}
        finally:
            async for stale in redis.scan_iter(match=f"{settings.REDIS_PREFIX}*"):
                await redis.delete(stale)
            await redis.aclose()
            await delete_topology(broker, names)
            await broker.close()
    return _figures(reports)


def _figures(reports: dict[tuple[str, str], list[dict[str, float]]]) -> dict[str, Any]:
    amd = {
        name: {
            "median_detect_ms": _median_ms([r["amd_at"] - r["amd_from"] for r in rows]),
            "verdict_calls": len(rows),
        }
        for (kind, name), rows in reports.items()
        if kind == "amd"
    }
    drop = [r["beep_end"] - r["answered"] for r in reports[("drop", "voicemail drop (0005)")]]
    confirm = {}
    for name in CONFIRM_CASES:
        plain = _median_ms([r["ended"] - r["answered"] for r in reports[("plain", name)]])
        listening = _median_ms(
            [r["confirm_at"] - r["answered"] for r in reports[("confirm", name)]]
        )
        confirm[name] = {
            "plain_ms": plain,
            "confirm_ms": listening,
            "added_ms": round(listening - plain, 1),
        }
    return {"amd": amd, "voicemail_answer_to_message_ms": _median_ms(drop), "confirm": confirm}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=5, help="calls per case")
    args = parser.parse_args()
    info = machine_info()
    with PrivateAsterisk(find_asterisk()) as pbx:
        figures = asyncio.run(_run(pbx, args.calls))
    print_table(
        "AMD: time to a verdict (Asterisk's clock)",
        ["callee", "median ms"],
        [[name, row["median_detect_ms"]] for name, row in figures["amd"].items()],
    )
    print(
        f"voicemail drop: answer -> message start, median "
        f"{figures['voicemail_answer_to_message_ms']:.0f} ms"
    )
    print_table(
        "Confirmation: answer -> end of the call's part (Asterisk's clock)",
        ["callee", "plain ms", "confirm ms", "added ms"],
        [
            [name, row["plain_ms"], row["confirm_ms"], row["added_ms"]]
            for name, row in figures["confirm"].items()
        ],
    )
    path = write_result("bench_listen", {"calls_per_case": args.calls, "machine": info, **figures})
    print(f"\nwritten {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
