"""A backlog at scale: 100,000 queued jobs drained by 10 worker processes.

    .venv/bin/python benchmarks/bench_scale.py [--jobs 100000] [--high 1000] [--workers 10]

On a private Redis (started here, so that its memory counts only this run) and the shared
RabbitMQ (own queue prefix): `--jobs` normal jobs created the way the API creates them and
published, then `--high` high-priority jobs behind them; then `--workers` worker processes
(simulated calls with no delay, one cached text) are started. Reported: the backlog's drain
rate, Redis memory per queued job and per finished job, and when the high-priority jobs
finished relative to the normal backlog (priority holds when they are all done while most
normal jobs still wait).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from _common import (
    ENTRY,
    PYTHON,
    Isolation,
    delete_broker_objects,
    free_port,
    machine_info,
    print_table,
    processes,
    product_env,
    product_values,
    spawn,
    write_result,
)
from ttsqueue.broker.connection import connect_broker
from ttsqueue.broker.publisher import Publisher
from ttsqueue.broker.topology import declare_topology
from ttsqueue.config import load_settings
from ttsqueue.domain import Job, JobMessage, JobStatus, Priority, iso, utcnow
from ttsqueue.store.factory import build_store, connect_store
from ttsqueue.store.keys import Keys

TEXT = "Hola, este es un mensaje de prueba del benchmark."
PHONE = "3005050149"
WINDOW = 256


def make_job(priority: Priority) -> Job:
    now = iso(utcnow()) or ""
    return Job(
        job_id=str(uuid.uuid4()),
        status=JobStatus.QUEUED,
        text=TEXT,
        phone_number=PHONE,
        e164=f"+57{PHONE}",
        dial_number=PHONE,
        language="es",
        engine="espeak",
        priority=priority,
        created_at=now,
        updated_at=now,
    )


async def used_memory(client: aioredis.Redis) -> int:
    return int((await client.info("memory"))["used_memory"])


async def preload(values: dict[str, str], normal: int, high: int) -> dict[str, Any]:
    settings = load_settings(**values)
    redis = connect_store(settings, client_name="bench-scale")
    connection = await connect_broker(settings.RABBITMQ_URL, name="bench-scale")
    try:
        channel = await connection.channel()
        names = await declare_topology(channel, settings)
        await channel.close()
        lifecycle = build_store(redis, settings).lifecycle
        publisher = Publisher(connection, names)
        before = await used_memory(redis)
        started = time.monotonic()
        high_ids: list[str] = []

        async def one(priority: Priority) -> None:
            job = make_job(priority)
            await lifecycle.create(job)
            message = JobMessage(job_id=job.job_id, record=job.model_dump(mode="json"))
            await publisher.to_work_queue(names.work_queue(priority), message.encode(), job.job_id)
            if priority is Priority.HIGH:
                high_ids.append(job.job_id)

        for priority, count in ((Priority.NORMAL, normal), (Priority.HIGH, high)):
            for first in range(0, count, WINDOW):
                batch = min(WINDOW, count - first)
                await asyncio.gather(*(one(priority) for _ in range(batch)))
        seconds = time.monotonic() - started
        after = await used_memory(redis)
    finally:
        await connection.close()
        await redis.aclose()
    return {
        "preload_s": round(seconds, 1),
        "bytes_per_queued_job": round((after - before) / (normal + high)),
        "high_ids": high_ids,
    }


async def drain(
    url: str, prefix: str, high_ids: list[str], total: int, timeout: float
) -> dict[str, Any]:
    """Poll until every job is completed; when the high jobs were all done, how many normal
    jobs were done too."""
    client = aioredis.Redis.from_url(url, decode_responses=True)
    keys = Keys(prefix)
    started = time.monotonic()
    samples: list[tuple[float, int]] = []
    high_done_at: float | None = None
    normal_done_then = 0
    try:
        while True:
            done = int(await client.zcard(keys.status_index(JobStatus.COMPLETED)))
            now = time.monotonic() - started
            samples.append((now, done))
            if high_done_at is None:
                async with client.pipeline(transaction=False) as pipe:
                    for job_id in high_ids:
                        pipe.hget(keys.job(job_id), "status")
                    statuses = await pipe.execute()
                if all(s == JobStatus.COMPLETED.value for s in statuses):
                    high_done_at = now
                    normal_done_then = done - len(high_ids)
            if done >= total:
                break
            if now > timeout:
                raise SystemExit(f"not drained after {timeout}s: {done}/{total}")
            await asyncio.sleep(1.0)
        memory = await used_memory(client)
    finally:
        await client.aclose()
    first = next(t for t, n in samples if n > 0)
    return {
        "seconds": round(samples[-1][0], 1),
        "first_done_s": round(first, 1),
        "drain_rate": round(total / max(samples[-1][0] - first, 1e-6), 1),
        "high_all_done_s": round(high_done_at or 0.0, 1),
        "normal_done_when_high_done": normal_done_then,
        "used_memory_end": memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--high", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ttsq-bench-scale-"))
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    port = free_port()
    redis_proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(work), "--save", ""],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    iso_ = Isolation.new()
    url = f"redis://127.0.0.1:{port}/0"
    audio = work / "audio"
    values = product_values(iso_, audio, REDIS_URL=url, WORKER_CONCURRENCY=args.concurrency)
    try:
        time.sleep(0.5)
        empty = asyncio.run(_memory(url))
        loaded = asyncio.run(preload(values, args.jobs, args.high))
        total = args.jobs + args.high
        with processes() as started:
            for index in range(args.workers):
                env = product_env(
                    iso_,
                    audio,
                    REDIS_URL=url,
                    WORKER_CONCURRENCY=args.concurrency,
                    WORKER_ID=f"bench-{iso_.tag}-{index}",
                )
                started.append(spawn(f"worker-{index}", [PYTHON, str(ENTRY), "worker"], env, work))
            drained = asyncio.run(
                drain(url, iso_.redis_prefix, loaded["high_ids"], total, args.timeout)
            )
    finally:
        asyncio.run(delete_broker_objects(iso_.names.queues(), iso_.names.exchanges()))
        redis_proc.terminate()
        redis_proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)
    summary = {
        "jobs": total,
        "workers": args.workers,
        "preload_s": loaded["preload_s"],
        "drain_s": drained["seconds"],
        "drain_rate_jobs_s": drained["drain_rate"],
        "bytes_per_queued_job": loaded["bytes_per_queued_job"],
        "bytes_per_finished_job": round((drained["used_memory_end"] - empty) / total),
        "high_all_done_s": drained["high_all_done_s"],
        "normal_done_when_high_done": drained["normal_done_when_high_done"],
    }
    print_table("Backlog at scale", list(summary), [list(summary.values())])
    write_result(
        "bench_scale",
        {"machine": machine_info(), "config": vars(args), "summary": summary},
    )


async def _memory(url: str) -> int:
    client = aioredis.Redis.from_url(url)
    try:
        return await used_memory(client)
    finally:
        await client.aclose()


if __name__ == "__main__":
    main()
