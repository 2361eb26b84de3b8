"""Calls one Asterisk carries at once, and its CPU per call, on Local channels.

    ASTERISK_BIN=... .venv/bin/python benchmarks/bench_asterisk_calls.py [--levels 50,100,200,400]

A private Asterisk (tests/asterisk: the shipped dialplan, the fake phones) is given, level by
level, that many calls at once through one AMI session, exactly as the AMI dialer places them
(Originate to `Local/<n>@fake-phone`, the answered leg running `tts-playback`, which plays a
60-second message). With every call of a level up (counted by Asterisk: `core show channels`),
the Asterisk process's CPU time (user + system, all threads, from /proc) is read over
`--window` seconds; then every channel is hung up and the next level starts.

What it measures is the PBX side of a call without a trunk: dialplan, Playback() of an 8 kHz
WAV and the Local channel that carries its frames, AMI events. A real trunk adds RTP and, when
codecs differ, transcoding per call; size from these figures as an upper bound per core.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
import wave
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks._common import machine_info, print_table, write_result  # noqa: E402

from tests.asterisk.fake_phones import CHANNEL_TEMPLATE, number  # noqa: E402
from tests.asterisk.install import find_asterisk  # noqa: E402
from tests.asterisk.instance import PrivateAsterisk  # noqa: E402
from ttsqueue.dialer.ami import AmiCredentials, AmiSession  # noqa: E402
from ttsqueue.dialer.ami.dialer import originate_action  # noqa: E402
from ttsqueue.dialer.dial_values import DialValues  # noqa: E402

MESSAGE_S = 60
ORIGINATE_PER_S = 50.0


def write_message(directory: Path) -> str:
    """A 60 s 8 kHz mono WAV (a quiet tone, so Playback() really reads and frames audio)."""
    path = directory / "message.wav"
    frames = bytearray()
    for i in range(8000 * MESSAGE_S):
        sample = 800 if (i // 20) % 2 else -800  # 200 Hz square wave
        frames += sample.to_bytes(2, "little", signed=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(frames))
    return str(path.with_suffix(""))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


async def wait_live(pbx: PrivateAsterisk, wanted: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    live = 0
    while time.monotonic() < deadline:
        live = len(await asyncio.to_thread(pbx.live_calls))
        if live == wanted:
            return live
        await asyncio.sleep(0.5)
    return live


async def one_level(
    pbx: PrivateAsterisk, session: AmiSession, audio: str, calls: int, window: float
) -> dict[str, Any]:
    started = time.monotonic()
    refused = 0
    for n in range(calls):
        call_id = f"{uuid.uuid4().hex}01"
        values = DialValues(
            channel=CHANNEL_TEMPLATE.replace("{number}", number("0006")),
            caller_id=None,
            context="tts-playback",
            tts_file=audio,
            job_id=str(uuid.uuid4()),
            call_id=call_id,
            ring_timeout_s=10,
        )
        response = await session.request(originate_action(values), 10.0)
        refused += response.name.lower() != "success"
        await asyncio.sleep(max(0.0, started + (n + 1) / ORIGINATE_PER_S - time.monotonic()))
    up = await wait_live(pbx, calls, timeout=30)
    pid = pbx.pid
    assert pid is not None
    load_before = os.getloadavg()[0]
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(window)
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    still_up = len(await asyncio.to_thread(pbx.live_calls))
    await asyncio.to_thread(pbx.cli, "channel request hangup all")
    await wait_live(pbx, 0, timeout=30)
    await asyncio.sleep(1.0)
    cpu_share = (cpu1 - cpu0) / (t1 - t0)
    return {
        "calls": calls,
        "up": up,
        "still_up_after_window": still_up,
        "refused": refused,
        "cpu_cores": round(cpu_share, 4),
        "cpu_ms_per_call_second": round(1000 * cpu_share / max(up, 1), 3),
        "calls_per_core": round(up / cpu_share) if cpu_share else None,
        "load_avg": round(load_before, 2),
    }


async def idle_cpu(pbx: PrivateAsterisk, window: float) -> float:
    pid = pbx.pid
    assert pid is not None
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(window)
    return (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="50,100,200,400")
    parser.add_argument("--window", type=float, default=10.0)
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    with tempfile.TemporaryDirectory(prefix="ttsq-bench-ast-") as tmp:
        audio = write_message(Path(tmp))
        os.chmod(tmp, 0o755)
        with PrivateAsterisk(find_asterisk()) as pbx:
            session = AmiSession(
                AmiCredentials("127.0.0.1", pbx.ami_port, pbx.ami_user, pbx.ami_secret),
                lambda _: None,
            )
            session.start()
            assert await session.wait_connected(20), session.last_error
            try:
                idle = await idle_cpu(pbx, args.window)
                rows = [await one_level(pbx, session, audio, n, args.window) for n in levels]
            finally:
                await session.close()
    print_table(
        "One private Asterisk, Local-channel calls playing a 60 s message",
        ["calls up", "Asterisk CPU (cores)", "CPU ms per call-second", "calls per core", "load"],
        [
            [
                f"{r['up']}/{r['calls']}",
                f"{r['cpu_cores']:.3f}",
                f"{r['cpu_ms_per_call_second']:.2f}",
                str(r["calls_per_core"]),
                f"{r['load_avg']:.1f}",
            ]
            for r in rows
        ],
    )
    print(f"idle Asterisk: {idle:.4f} cores")
    write_result(
        "bench_asterisk_calls",
        {"machine": machine_info(), "idle_cpu_cores": round(idle, 4), "levels": rows},
    )


if __name__ == "__main__":
    asyncio.run(main())
