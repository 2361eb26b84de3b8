"""Trunk protection with a real backend: MAX_CONCURRENT_CALLS=3, 20 jobs, callees that hold the
line 2 s.

    .venv/bin/python benchmarks/bench_trunk.py [--jobs 20] [--limit 3] [--hold 2.0] [--workers 2]

Two worker processes (`ttsqueue worker`, DIALER=ami, WORKER_CONCURRENCY=6 each, so that jobs
wait for a trunk slot, not for a worker) place the calls through AMI to the recorded AMI server
double (tests/doubles), which replays `answer.log` stretched so that each call lives `--hold`
seconds from Originate to Hangup. What "Asterisk" sees is measured there: the number of live
calls at every change. Printed: the most calls ever live (must be <= the limit) and the share
of time all slots were busy while a backlog existed, i.e. from the first time the limit was
reached until the last call was originated (target >= 90%).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import redis.asyncio as aioredis

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.doubles.ami_server import AmiServerDouble, running_ami_double  # noqa: E402
from tests.doubles.scenarios import call_script  # noqa: E402
from tests.factories import make_job  # noqa: E402
from ttsqueue.broker.publisher import Publisher  # noqa: E402
from ttsqueue.broker.topology import QueueNames, declare_topology  # noqa: E402
from ttsqueue.domain import JobMessage, JobStatus  # noqa: E402
from ttsqueue.store.jobs import JobStore  # noqa: E402
from ttsqueue.store.keys import Keys  # noqa: E402
from ttsqueue.store.lifecycle import JobLifecycle  # noqa: E402

RABBITMQ_URL = os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
RESULTS = REPO / "benchmarks" / "results" / "bench_trunk.json"


def worker_env(tag: str, worker: int, port: int, limit: int, audio: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        RABBITMQ_URL=RABBITMQ_URL,
        REDIS_URL=REDIS_URL,
        REDIS_PREFIX=f"bench:{tag}:",
        QUEUE_PREFIX=f"bench{tag}_",
        WORKER_ID=f"bench-{tag}-{worker}",
        WORKER_CONCURRENCY="6",
        AUDIO_DIR=str(audio),
        TTS_ENGINE="espeak",
        TTS_FALLBACK_ENGINE="",
        DIALER="ami",
        ASTERISK_AMI_HOST="127.0.0.1",
        ASTERISK_AMI_PORT=str(port),
        ASTERISK_AMI_USER="tts",
        ASTERISK_AMI_SECRET="tts_secret",
        MAX_CONCURRENT_CALLS=str(limit),
        LOG_FORMAT="json",
        LOG_LEVEL="WARNING",
    )
    return env


def busy_share(log: list[tuple[float, int]], limit: int, last_start: float) -> float:
    """Time-weighted share with `limit` calls live, from the first time the limit was reached
    until the last call started (the backlog is empty after that)."""
    start = next((t for t, live in log if live >= limit), None)
    if start is None or last_start <= start:
        return 0.0
    busy = 0.0
    for (t, live), (t_next, _) in zip(log, [*log[1:], (last_start, 0)], strict=True):
        lo, hi = max(t, start), min(t_next, last_start)
        if hi > lo and live >= limit:
            busy += hi - lo
    return busy / (last_start - start)


async def queue_jobs(tag: str, jobs: int) -> tuple[list[str], aioredis.Redis]:
    redis = aioredis.from_url(REDIS_URL, decode_responses=True)
    lifecycle = JobLifecycle(redis, Keys(f"bench:{tag}:"), 3600)
    connection = await aio_pika.connect_robust(RABBITMQ_URL)
    channel = await connection.channel()
    names = QueueNames.from_prefix(f"bench{tag}_")
    from ttsqueue.config import load_settings

    await declare_topology(channel, load_settings(QUEUE_PREFIX=f"bench{tag}_"))
    publisher = Publisher(connection, names)
    ids = []
    for _ in range(jobs):
        job = make_job(text="Aviso: mantenimiento programado esta noche.", max_retries=0)
        await lifecycle.create(job)
        body = JobMessage(job_id=job.job_id).encode()
        await publisher.to_work_queue(names.calls, body, job.job_id)
        ids.append(job.job_id)
    await connection.close()
    return ids, redis


async def wait_done(redis: aioredis.Redis, tag: str, ids: list[str], timeout: float) -> None:
    store = JobStore(redis, Keys(f"bench:{tag}:"), 3600)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = [await store.get_status(i) for i in ids]
        if all(s is not None and s.terminal for s in statuses):
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"jobs not finished in {timeout:.0f}s: {statuses}")


async def cleanup(redis: aioredis.Redis, tag: str) -> None:
    async for key in redis.scan_iter(match=f"bench:{tag}:*", count=1000):
        await redis.delete(key)
    await redis.aclose()
    connection = await aio_pika.connect_robust(RABBITMQ_URL)
    channel = await connection.channel()
    names = QueueNames.from_prefix(f"bench{tag}_")
    for queue in names.queues():
        await channel.queue_delete(queue)
    for exchange in names.exchanges():
        await channel.exchange_delete(exchange)
    await connection.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:10]
    scale = args.hold / call_script("answer").duration
    with tempfile.TemporaryDirectory() as audio:
        async with running_ami_double(time_scale=scale) as double:
            ids, redis = await queue_jobs(tag, args.jobs)
            ttsqueue = str(Path(sys.executable).with_name("ttsqueue"))
            workers = [
                await asyncio.create_subprocess_exec(
                    ttsqueue, "worker", env=worker_env(tag, n, double.port, args.limit, Path(audio))
                )
                for n in range(args.workers)
            ]
            started = time.monotonic()
            try:
                await wait_done(redis, tag, ids, timeout=120 + args.jobs * args.hold)
            finally:
                for worker in workers:
                    worker.terminate()
                for worker in workers:
                    await asyncio.wait_for(worker.wait(), 30)
            elapsed = time.monotonic() - started
            store = JobStore(redis, Keys(f"bench:{tag}:"), 3600)
            completed = [await store.get_status(i) for i in ids].count(JobStatus.COMPLETED)
            await cleanup(redis, tag)
    return summary(double, args, completed, elapsed)


def summary(
    double: AmiServerDouble, args: argparse.Namespace, completed: int, elapsed: float
) -> dict[str, Any]:
    log = sorted(double.live_log)
    last_start = max(call.started for call in double.calls)
    share = busy_share(log, args.limit, last_start)
    holds = [c.ended - c.started for c in double.calls if c.ended is not None]
    return {
        "jobs": args.jobs,
        "limit": args.limit,
        "hold_s": args.hold,
        "calls_placed": len(double.calls),
        "completed": completed,
        "max_live_calls": max(live for _, live in log),
        "busy_share_with_backlog": round(share, 4),
        "mean_call_s": round(sum(holds) / len(holds), 3),
        "elapsed_s": round(elapsed, 2),
        "ideal_s": round(args.jobs * args.hold / args.limit, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--limit", type=int, default=3)
    parser.add_argument("--hold", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    ok = result["max_live_calls"] <= args.limit and result["busy_share_with_backlog"] >= 0.9
    print(f"\ntrunk protection: {args.jobs} jobs, limit {args.limit}, {args.hold:g} s calls")
    print(f"  calls placed / completed        {result['calls_placed']} / {result['completed']}")
    print(f"  most calls live at once         {result['max_live_calls']}  (limit {args.limit})")
    print(f"  all slots busy while backlogged {result['busy_share_with_backlog']:.1%}  (>= 90%)")
    print(f"  mean call length                {result['mean_call_s']} s")
    print(f"  drained in                      {result['elapsed_s']} s", end="")
    print(f" (ideal {result['ideal_s']} s)")
    print(f"  {'PASS' if ok else 'FAIL'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({**result, "pass": ok}, indent=2) + "\n")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
