"""End-to-end jobs/s: a preloaded backlog drained by 1 and 2 worker processes, against Celery.

    .venv/bin/python benchmarks/bench_e2e.py [--jobs 5000] [--concurrency 32,64] [--profile]

Ours: N jobs created the way the API creates them (JobLifecycle.create, then the API's first
message, the job's copy included, with a confirmed publish), all with the same text so that
speech comes from the cache (one synthesis, in a warm-up job), the simulator dialer with zero
delay. The clock starts when the worker process(es) are spawned
and stops when N more jobs are `completed` in Redis. Both sides start from compiled bytecode,
as installed (`./manage.sh` compiles the editable package; pip compiled Celery's).
Baselines (same run): Celery + RabbitMQ broker + Redis result backend, N tasks preloaded, the
clock from spawning `celery worker` until N results exist in Redis; the `noop` task (Celery's
best case) and the `bookkeeping` task (the same per-job Redis writes as ours: record, history,
status indexes and counters per state change, with redis-py; see _celery_side.py). Celery
lives in benchmarks/.venv-celery (created on first run).
Targets: ours with 2 workers >= 1 x Celery noop and >= 2 x Celery bookkeeping.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from _common import (
    BENCH_DIR,
    ENTRY,
    PYTHON,
    RABBITMQ_URL,
    REDIS_URL,
    Isolation,
    Proc,
    cleanup,
    compile_product,
    cpu_seconds,
    delete_broker_objects,
    delete_redis_prefix,
    machine_info,
    print_profile,
    print_table,
    processes,
    product_env,
    product_values,
    profile_summary,
    py_spy_argv,
    redis_traffic,
    sample_summary,
    service_cpu,
    spawn,
    write_result,
)
from ttsqueue.broker.connection import connect_broker
from ttsqueue.broker.delays import DelayQueues
from ttsqueue.broker.job_messages import send_first_message
from ttsqueue.broker.publisher import Publisher
from ttsqueue.broker.topology import declare_topology
from ttsqueue.config import load_settings
from ttsqueue.domain import Job, JobStatus, Priority, iso, utcnow
from ttsqueue.store.connection import connect_redis
from ttsqueue.store.keys import Keys
from ttsqueue.store.lifecycle import JobLifecycle

TARGET_RATIO_NOOP = 1.0
TARGET_RATIO_BOOKKEEPING = 2.0
TEXT = "Hola, este es un mensaje de prueba del benchmark."
PHONE = "3005050149"
PRELOAD_WINDOW = 256
CELERY_VENV = BENCH_DIR / ".venv-celery"
CELERY_POOLS = {"prefork": 2, "threads": 4, "solo": 1}
# solo is far slower on this broker (about 20 tasks/s here): only on request.
DEFAULT_CELERY_POOLS = "prefork,threads"


# Ours ---------------------------------------------------------------------------------------
def make_job() -> Job:
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
        priority=Priority.NORMAL,
        created_at=now,
        updated_at=now,
    )


async def preload(values: dict[str, str], count: int) -> float:
    """Create `count` queued jobs and publish their messages; returns the seconds it took."""
    settings = load_settings(**values)
    redis = connect_redis(settings.REDIS_URL, client_name="bench-preload")
    connection = await connect_broker(settings.RABBITMQ_URL, name="bench-preload")
    start = time.monotonic()
    try:
        channel = await connection.channel()
        names = await declare_topology(channel, settings)
        await channel.close()
        lifecycle = JobLifecycle(redis, Keys(settings.REDIS_PREFIX), settings.JOB_TTL_SECONDS)
        publisher = Publisher(connection, names)

        delays = DelayQueues.of(settings)

        async def one() -> None:
            job = make_job()
            await lifecycle.create(job)
            # The message the API sends: the job's copy included (broker/job_messages.py).
            await send_first_message(publisher, delays, job)

        for first in range(0, count, PRELOAD_WINDOW):
            await asyncio.gather(*(one() for _ in range(min(PRELOAD_WINDOW, count - first))))
    finally:
        await connection.close()
        await redis.aclose()
    return time.monotonic() - start


class Counter:
    """Polls Redis for a completion count; the clock is the caller's."""

    def __init__(self, read: Callable[[aioredis.Redis], Any]) -> None:
        self.read = read

    async def wait(
        self, target: int, started: float, procs: Sequence[Proc], timeout: float
    ) -> dict[str, float]:
        client = aioredis.Redis.from_url(REDIS_URL)
        first_done: float | None = None
        try:
            while True:
                done, failed = await self.read(client)
                now = time.monotonic()
                if first_done is None and done > 0:
                    first_done = now
                if failed:
                    raise RuntimeError(f"{failed} jobs failed")
                if done >= target:
                    return {"seconds": now - started, "first_done_s": (first_done or now) - started}
                if now - started > timeout:
                    raise RuntimeError(f"only {done}/{target} done after {timeout:.0f}s")
                for proc in procs:
                    if not proc.alive():
                        raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
                await asyncio.sleep(0.01)
        finally:
            await client.aclose()


def status_counter(prefix: str, base: int) -> Counter:
    keys = Keys(prefix)

    async def read(client: aioredis.Redis) -> tuple[int, int]:
        async with client.pipeline(transaction=False) as pipe:
            pipe.zcard(keys.status_index(JobStatus.COMPLETED))
            pipe.zcard(keys.status_index(JobStatus.FAILED))
            done, failed = await pipe.execute()
        return int(done) - base, int(failed)

    return Counter(read)


async def _zcard(prefix: str, status: JobStatus) -> int:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        return int(await client.zcard(Keys(prefix).status_index(status)))
    finally:
        await client.aclose()


async def _cache_misses(prefix: str) -> int:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        return int(await client.hget(Keys(prefix).cache_stats, "misses") or 0)
    finally:
        await client.aclose()


def preload_backlog(iso_: Isolation, work: Path, jobs: int, concurrency: int) -> int:
    """`jobs` queued jobs preloaded for one worker × `concurrency` (speech cached under
    `work/audio` by an earlier round); the count of completed jobs before them, for
    `drain_backlog`."""
    values = product_values(iso_, work / "audio", WORKER_CONCURRENCY=concurrency)
    asyncio.run(preload(values, jobs))
    return asyncio.run(_zcard(iso_.redis_prefix, JobStatus.COMPLETED))


def drain_backlog(
    iso_: Isolation,
    work: Path,
    jobs: int,
    concurrency: int,
    base: int,
    started: list[Proc],
    *,
    command: Sequence[str] = (PYTHON, str(ENTRY)),
    timeout: float = 600.0,
    **overrides: object,
) -> Proc:
    """One worker (`command` followed by `worker`, added to `started`) run until `jobs` more
    jobs are completed than `base`; it is left running, for the caller to read and stop."""
    env = product_env(iso_, work / "audio", WORKER_CONCURRENCY=concurrency, **overrides)
    worker = spawn(f"worker-{jobs}", [*command, "worker"], env, work)
    started.append(worker)
    counter = status_counter(iso_.redis_prefix, base)
    asyncio.run(counter.wait(jobs, time.monotonic(), started, timeout))
    return worker


def worker_argv(profiler: str | None, dump: Path | None) -> list[str]:
    if profiler == "cprofile" and dump is not None:
        return [PYTHON, "-m", "cProfile", "-o", str(dump), str(ENTRY), "worker"]
    return [PYTHON, str(ENTRY), "worker"]


def ours_round(
    iso_: Isolation,
    work: Path,
    jobs: int,
    workers: int,
    concurrency: int,
    timeout: float,
    profiler: str | None = None,
    dump: Path | None = None,
) -> dict[str, Any]:
    audio = work / "audio"
    values = product_values(iso_, audio, WORKER_CONCURRENCY=concurrency)
    preload_s = asyncio.run(preload(values, jobs))
    base = asyncio.run(_zcard(iso_.redis_prefix, JobStatus.COMPLETED))
    misses_before = asyncio.run(_cache_misses(iso_.redis_prefix))
    counter = status_counter(iso_.redis_prefix, base)
    services_before = service_cpu()
    traffic_before = redis_traffic()
    with processes() as started:
        t0 = time.monotonic()
        for index in range(workers):
            env = product_env(
                iso_, audio, WORKER_CONCURRENCY=concurrency, WORKER_ID=f"bench-{iso_.tag}-{index}"
            )
            name = f"worker-{workers}x{concurrency}-{index}"
            started.append(spawn(name, worker_argv(profiler, dump), env, work))
        sampler = None
        if profiler == "py-spy" and dump is not None:
            sampler = spawn("py-spy", py_spy_argv(started[0].popen.pid, dump), env, work)
        timing = asyncio.run(counter.wait(jobs, t0, started, timeout))
        cpu = sum(cpu_seconds(proc.popen.pid) for proc in started)
        services = {k: v - services_before.get(k, 0.0) for k, v in service_cpu().items()}
        reads, commands = (b - a for a, b in zip(traffic_before, redis_traffic(), strict=True))
        for proc in started:
            proc.stop()
        if sampler is not None:
            sampler.popen.wait(60)  # py-spy writes its output once the worker has exited
    return {
        "workers": workers,
        "concurrency": concurrency,
        "jobs": jobs,
        "preload_s": round(preload_s, 2),
        "seconds": round(timing["seconds"], 3),
        "first_done_s": round(timing["first_done_s"], 3),
        "rate": jobs / timing["seconds"],
        "steady_rate": jobs / max(timing["seconds"] - timing["first_done_s"], 1e-6),
        "worker_cpu_s": round(cpu, 2),
        "worker_cpu_ms_per_job": round(1000 * cpu / jobs, 3),
        "service_cpu_s": {k: round(v, 2) for k, v in services.items()},
        "redis_reads": reads,
        "redis_commands": commands,
        "cache_misses": asyncio.run(_cache_misses(iso_.redis_prefix)) - misses_before,
    }


def run_ours(args: argparse.Namespace, work: Path) -> tuple[list[dict[str, Any]], Any]:
    iso_ = Isolation.new()
    rounds: list[dict[str, Any]] = []
    profile: Any = None
    try:
        # One job through a worker: the single synthesis that fills the speech cache. Its CPU
        # time is about what a worker spends starting up.
        warm = ours_round(iso_, work, 1, 1, 1, args.timeout)
        args.startup_cpu_s = warm["worker_cpu_s"]
        for workers in (1, 2):
            for concurrency in (int(c) for c in args.concurrency.split(",")):
                result = ours_round(iso_, work, args.jobs, workers, concurrency, args.timeout)
                rounds.append(result)
                print(
                    f"  ours: {workers} worker(s) x {concurrency}: {result['rate']:,.0f} jobs/s",
                    flush=True,
                )
        if args.profile:
            best = max((r for r in rounds if r["workers"] == 1), key=lambda r: r["rate"])
            dump = work / "worker.prof"
            profiled = ours_round(
                iso_, work, args.jobs, 1, best["concurrency"], args.timeout * 3, args.profile, dump
            )
            summary = (
                profile_summary(dump)
                if args.profile == "cprofile"
                else sample_summary(dump, "/src/ttsqueue/worker/main.py")
            )
            profile = {"profiler": args.profile, "round": profiled, **summary}
            if args.profile_out:
                shutil.copyfile(dump, args.profile_out)
    finally:
        asyncio.run(cleanup(iso_))
    return rounds, profile


# Celery -------------------------------------------------------------------------------------
def celery_python() -> Path:
    python = CELERY_VENV / "bin" / "python"
    if not (CELERY_VENV / "bin" / "celery").exists():
        print(f"creating {CELERY_VENV} (celery + redis) ...", flush=True)
        subprocess.run([PYTHON, "-m", "venv", "--clear", str(CELERY_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "celery>=5.3,<6", "redis>=5"], check=True
        )
    return python


def celery_round(
    task: str, pool: str, concurrency: int, jobs: int, timeout: float, work: Path
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:10]
    queue = f"bench{tag}_celery"
    prefix = f"bench:{tag}:"
    env = {
        **os.environ,
        "BENCH_CELERY_BROKER": RABBITMQ_URL,
        "BENCH_CELERY_BACKEND": REDIS_URL,
        "BENCH_CELERY_QUEUE": queue,
        "BENCH_CELERY_PREFIX": prefix,
    }
    python = celery_python()
    ids_file = work / f"celery-{tag}.json"
    try:
        done = subprocess.run(
            [str(python), "_celery_side.py", "preload", task, str(jobs), str(ids_file)],
            cwd=BENCH_DIR, env=env, capture_output=True, text=True, check=True, timeout=300,
        )  # fmt: skip
        preload_s = float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])
        keys = [
            f"{prefix}celery-task-meta-{task_id}" for task_id in json.loads(ids_file.read_text())
        ]

        async def read(client: aioredis.Redis) -> tuple[int, int]:
            return int(await client.exists(*keys)), 0

        argv = [
            str(CELERY_VENV / "bin" / "celery"), "-A", "_celery_side", "worker",
            "-Q", queue, "-P", pool, "-c", str(concurrency), "-n", f"bench{tag}@%h",
            "--without-heartbeat", "--without-mingle", "--without-gossip", "-l", "WARNING",
        ]  # fmt: skip
        services_before = service_cpu()
        traffic_before = redis_traffic()
        with processes() as started:
            t0 = time.monotonic()
            started.append(spawn(f"celery-{pool}-{tag}", argv, env, work, cwd=BENCH_DIR))
            timing = asyncio.run(Counter(read).wait(jobs, t0, started, timeout))
            cpu = cpu_seconds(started[0].popen.pid)
            services = {k: v - services_before.get(k, 0.0) for k, v in service_cpu().items()}
            reads, commands = (b - a for a, b in zip(traffic_before, redis_traffic(), strict=True))
    finally:
        asyncio.run(delete_broker_objects([queue], [queue]))
        asyncio.run(delete_redis_prefix(REDIS_URL, prefix))
    return {
        "task": task,
        "pool": pool,
        "concurrency": concurrency,
        "jobs": jobs,
        "preload_s": round(preload_s, 2),
        "seconds": round(timing["seconds"], 3),
        "first_done_s": round(timing["first_done_s"], 3),
        "rate": jobs / timing["seconds"],
        "steady_rate": jobs / max(timing["seconds"] - timing["first_done_s"], 1e-6),
        "worker_cpu_s": round(cpu, 2),
        "worker_cpu_ms_per_job": round(1000 * cpu / jobs, 3),
        "service_cpu_s": {k: round(v, 2) for k, v in services.items()},
        "redis_reads": reads,
        "redis_commands": commands,
    }


def run_celery(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    rounds = []
    for task in args.celery_tasks.split(","):
        for pool in args.celery_pools.split(","):
            result = celery_round(task, pool, CELERY_POOLS[pool], args.jobs, args.timeout, work)
            rounds.append(result)
            print(
                f"  celery {task} {pool} x {result['concurrency']}: {result['rate']:,.0f} jobs/s",
                flush=True,
            )
    return rounds


# Report -------------------------------------------------------------------------------------
def report(
    args: argparse.Namespace,
    ours: list[dict[str, Any]],
    celery: list[dict[str, Any]],
    profile: Any,
) -> None:
    best_of = {
        task: max((float(r["rate"]) for r in celery if r["task"] == task), default=0.0)
        for task in ("noop", "bookkeeping")
    }
    base = best_of["noop"]
    like = best_of["bookkeeping"] or float("nan")
    rows: list[list[object]] = []
    labelled = [(f"celery {r['task']} {r['pool']} -c {r['concurrency']}", r) for r in celery] + [
        (f"ttsqueue {r['workers']} worker(s) x {r['concurrency']}", r) for r in ours
    ]
    for label, r in labelled:
        services = r["service_cpu_s"]
        rows.append(
            [label, r["seconds"], r["first_done_s"], r["rate"], r["steady_rate"],
             r["worker_cpu_ms_per_job"], 1000 * services["redis"] / r["jobs"],
             1000 * services["rabbitmq"] / r["jobs"], r["redis_reads"] / r["jobs"],
             r["redis_commands"] / r["jobs"], r["rate"] / base, r["rate"] / like]
        )  # fmt: skip
    print_table(
        f"End-to-end, {args.jobs} preloaded jobs, clock from worker spawn to the last result "
        f"(ratios against the best Celery pool: noop {base:,.0f} jobs/s, "
        f"bookkeeping {like:,.0f} jobs/s)",
        ["run", "seconds", "1st done s", "jobs/s", "steady jobs/s", "worker CPU ms/job",
         "redis CPU ms/job", "rabbitmq CPU ms/job", "redis reads/job", "redis commands/job",
         "x noop", "x bookkeeping"],
        rows,
    )  # fmt: skip
    best = {n: max((r for r in ours if r["workers"] == n), key=lambda r: r["rate"]) for n in (1, 2)}
    summary = {
        "one_worker_rate": best[1]["rate"],
        "two_workers_rate": best[2]["rate"],
        "celery_rate": base,
        "celery_bookkeeping_rate": like,
        "one_worker_ratio": round(best[1]["rate"] / base, 3),
        "two_workers_ratio": round(best[2]["rate"] / base, 3),
        "two_workers_ratio_bookkeeping": round(best[2]["rate"] / like, 3),
        "target_ratio_noop": TARGET_RATIO_NOOP,
        "target_ratio_bookkeeping": TARGET_RATIO_BOOKKEEPING,
    }
    summary["meets_target"] = (
        summary["two_workers_ratio"] >= TARGET_RATIO_NOOP
        and summary["two_workers_ratio_bookkeeping"] >= TARGET_RATIO_BOOKKEEPING
    )
    print(
        f"\n1 worker: {best[1]['rate']:,.0f} jobs/s ({summary['one_worker_ratio']:.2f} x noop), "
        f"2 workers: {best[2]['rate']:,.0f} jobs/s ({summary['two_workers_ratio']:.2f} x noop, "
        f"{summary['two_workers_ratio_bookkeeping']:.2f} x bookkeeping); Celery noop "
        f"{base:,.0f} jobs/s, bookkeeping {like:,.0f} jobs/s; targets (2 workers) >= "
        f"{TARGET_RATIO_NOOP} x noop and >= {TARGET_RATIO_BOOKKEEPING} x bookkeeping: "
        f"{'met' if summary['meets_target'] else 'missed'}"
    )
    misses = sum(int(r["cache_misses"]) for r in ours)
    print(f"speech cache misses during the measured rounds: {misses} (expected 0)")
    if profile is not None:
        print(
            f"\nprofiled round (1 worker under {profile['profiler']}): "
            f"{profile['round']['rate']:,.0f} jobs/s"
        )
        print_profile(f"worker profile ({profile['profiler']})", profile)
    path = write_result(
        "bench_e2e",
        {
            "machine": args.machine,
            "config": {k: v for k, v in vars(args).items() if k != "machine"},
            "summary": summary,
            "ours": ours,
            "celery": celery,
            "profile": profile,
        },
    )
    print(f"result written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--concurrency", default="32,64", help="WORKER_CONCURRENCY values to try")
    parser.add_argument(
        "--celery-pools", default=DEFAULT_CELERY_POOLS, help="of prefork, threads, solo"
    )
    parser.add_argument("--celery-tasks", default="noop,bookkeeping", help="of noop, bookkeeping")
    parser.add_argument("--timeout", type=float, default=300.0, help="per round")
    parser.add_argument(
        "--profile",
        choices=["cprofile", "py-spy"],
        help="one more 1-worker round under a profiler (py-spy: sampled, installed on demand "
        "into benchmarks/.venv-tools)",
    )
    parser.add_argument("--profile-out", type=Path, help="keep the profile dump there")
    args = parser.parse_args()
    args.machine = machine_info()
    celery_python()
    # Both sides start from compiled bytecode, as installed: pip compiled Celery's packages.
    compile_product()
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        work = Path(tmp)
        print("Celery baseline ...", flush=True)
        celery = run_celery(args, work)
        print("ttsqueue ...", flush=True)
        ours, profile = run_ours(args, work)
    report(args, ours, celery, profile)


if __name__ == "__main__":
    main()
