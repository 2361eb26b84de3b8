"""Redis figures for sizing a deployment on several machines.

On a private Redis master with one replica (started here, on free ports):
- bytes per job: `used_memory` grown by N accepted job records (record, history entry,
  indexes), divided by N;
- the cost of REDIS_WAIT_REPLICAS=1: job creations timed with and without `WAIT` after each
  (interleaved batches, so that load drift hits both alike), as a ratio.

    .venv/bin/python benchmarks/bench_replication.py [--jobs 20000] [--timed 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis

from _common import free_port, machine_info, print_table, write_result
from ttsqueue.domain import Job, JobStatus, Priority, iso, utcnow
from ttsqueue.store.keys import Keys
from ttsqueue.store.lifecycle import JobLifecycle
from ttsqueue.store.replication import wait_replicated

TEXT = "Su cita médica es mañana a las 10:30 en la sede norte. Responda 1 para confirmar."


def _job(index: int) -> Job:
    now = iso(utcnow()) or ""
    return Job(
        job_id=f"{index:08d}-0000-4000-8000-000000000000",
        status=JobStatus.QUEUED,
        text=TEXT,
        phone_number="3005050149",
        e164="+573005050149",
        dial_number="3005050149",
        language="es",
        engine="gtts",
        priority=Priority.NORMAL,
        metadata={"patient": f"P{index:06d}", "site": "norte"},
        created_at=now,
        updated_at=now,
    )


def _redis(base: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(base)]
    argv += ["--save", "", "--appendonly", "no", *extra]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, start_new_session=True)


async def _until_up(client: aioredis.Redis) -> None:
    for _ in range(200):
        try:
            await client.ping()
            return
        except OSError:
            await asyncio.sleep(0.05)
        except aioredis.ConnectionError:
            await asyncio.sleep(0.05)
    raise SystemExit("redis-server did not start")


async def _until_replicated(master: aioredis.Redis) -> None:
    for _ in range(300):
        if int((await master.info("replication"))["connected_slaves"]) >= 1:
            return
        await asyncio.sleep(0.1)
    raise SystemExit("the replica did not connect")


async def run(jobs: int, timed: int) -> dict[str, object]:
    base = Path(tempfile.mkdtemp(prefix="ttsq-bench-repl-"))
    master_port, replica_port = free_port(), free_port()
    (base / "m").mkdir()
    (base / "r").mkdir()
    procs = [
        _redis(base / "m", master_port),
        _redis(base / "r", replica_port, "--replicaof", "127.0.0.1", str(master_port)),
    ]
    master = aioredis.Redis(port=master_port, decode_responses=True)
    try:
        await _until_up(master)
        await _until_replicated(master)
        keys = Keys("bench:")
        store = JobLifecycle(master, keys, 7 * 24 * 3600)
        before = int((await master.info("memory"))["used_memory"])
        for index in range(jobs):
            await store.create(_job(index))
        after = int((await master.info("memory"))["used_memory"])
        per_job = (after - before) / jobs

        plain: list[float] = []
        waited: list[float] = []
        batch = 100
        offset = jobs
        for round_index in range(timed // batch):
            for with_wait in (round_index % 2 == 0, round_index % 2 == 1):
                started = time.perf_counter()
                for index in range(batch):
                    await store.create(_job(offset + index))
                    if with_wait:
                        await wait_replicated(master, keys, 1, 200)
                elapsed = (time.perf_counter() - started) / batch
                (waited if with_wait else plain).append(elapsed)
                offset += batch
    finally:
        await master.aclose()
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(base, ignore_errors=True)
    plain_ms = statistics.median(plain) * 1000
    waited_ms = statistics.median(waited) * 1000
    return {
        "machine": machine_info(),
        "config": {"jobs": jobs, "timed": timed, "text_chars": len(TEXT)},
        "summary": {
            "bytes_per_job": round(per_job),
            "create_ms": round(plain_ms, 3),
            "create_with_wait_ms": round(waited_ms, 3),
            "wait_ratio": round(waited_ms / plain_ms, 2),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--timed", type=int, default=2_000)
    args = parser.parse_args()
    result = asyncio.run(run(args.jobs, args.timed))
    summary = result["summary"]
    assert isinstance(summary, dict)
    print_table("Redis per job, and the cost of WAIT", list(summary), [list(summary.values())])
    write_result("bench_replication", result)


if __name__ == "__main__":
    main()
