"""Strict priority at the dial: how long an alert waits for a trunk line, against how long
until a line frees, with every line busy and normal jobs waiting in every worker.

    .venv/bin/python benchmarks/bench_priority_dial.py [--repeat 5] [--baseline REF]

Two scenarios, each with three worker processes (`_entry.py worker`, simulator dialer with a
time scale so that calls last seconds, CALLS_PER_SECOND at its default 5):

- operator: WORKER_CONCURRENCY=4, MAX_CONCURRENT_CALLS=2, 30 normal calls queued, then one
  `priority: high` call once both lines are busy and normal jobs wait for them;
- ten lines: WORKER_CONCURRENCY=8, MAX_CONCURRENT_CALLS=10, 60 normal calls, then one alert.

Each runs with this checkout's workers ("line queue") and with the workers of REF ("before";
default: the last commit before the line queue), exported with `git archive` and put first on
PYTHONPATH; jobs are created and published by this checkout in both (same record and message
format), and the baseline is measured in the same run. From the jobs' histories in Redis:
the normal calls that started dialing between the alert's acceptance (`queued`) and its dial
(`calling`); the alert's time to dial; and the time from its acceptance until the first line
freed (a call live at the acceptance ended). With strict priority at the dial the two times
are close and at most one normal call gets in between.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aio_pika
import redis.asyncio as aioredis

from _common import (
    ENTRY,
    PYTHON,
    RABBITMQ_URL,
    REDIS_URL,
    REPO_ROOT,
    RESULTS_DIR,
    Isolation,
    cleanup,
    machine_info,
    print_table,
    processes,
    product_env,
    spawn,
)
from ttsqueue.broker.publisher import Publisher
from ttsqueue.broker.topology import declare_topology
from ttsqueue.config import load_settings
from ttsqueue.domain import HistoryEntry, Job, JobMessage, Priority
from ttsqueue.store.connection import connect_redis
from ttsqueue.store.factory import build_store
from ttsqueue.store.jobs import JobStore
from ttsqueue.store.keys import Keys

sys.path.insert(0, str(REPO_ROOT))
from tests.factories import make_job

# The last commit whose workers took trunk lines first come, first served.
BASELINE_REF = "f681157"
TEXT = "Aviso: mantenimiento programado esta noche."
ENDED = {"completed", "failed", "retrying"}


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    workers: int
    concurrency: int
    lines: int
    normal_jobs: int
    time_scale: float


SCENARIOS = (
    Scenario("operator: 3 workers x 4, 2 lines", 3, 4, 2, 30, 0.5),
    Scenario("ten lines: 3 workers x 8, 10 lines", 3, 8, 10, 60, 1.0),
)


@contextlib.contextmanager
def baseline_source(ref: str) -> Iterator[Path]:
    """`src/` of `ref`, exported to a temporary folder."""
    with tempfile.TemporaryDirectory() as folder:
        archive = Path(folder) / "src.tar"
        subprocess.run(
            ["git", "archive", "--format=tar", "-o", str(archive), ref, "src"],
            cwd=REPO_ROOT,
            check=True,
        )
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
        yield Path(folder) / "src"


def moment(entry: HistoryEntry) -> float:
    return datetime.fromisoformat(entry.at).timestamp()


def first(history: list[HistoryEntry], statuses: set[str]) -> float | None:
    return next((moment(h) for h in history if h.status.value in statuses), None)


async def run_once(scenario: Scenario, source: Path | None, log_dir: Path) -> dict[str, Any]:
    iso = Isolation.new()
    settings = load_settings(QUEUE_PREFIX=iso.queue_prefix, REDIS_PREFIX=iso.redis_prefix)
    redis = connect_redis(REDIS_URL, client_name="bench-priority-dial")
    parts = build_store(redis, settings)
    store = parts.jobs
    connection = await aio_pika.connect_robust(RABBITMQ_URL)
    try:
        channel = await connection.channel()
        await declare_topology(channel, settings)
        publisher = Publisher(connection, iso.names)

        async def submit(priority: Priority) -> str:
            job: Job = make_job(text=TEXT, max_retries=0, priority=priority)
            await parts.lifecycle.create(job)
            body = JobMessage(job_id=job.job_id).encode()
            await publisher.to_work_queue(iso.names.work_queue(priority), body, job.job_id)
            return job.job_id

        normal = [await submit(Priority.NORMAL) for _ in range(scenario.normal_jobs)]
        overrides: dict[str, object] = {
            "WORKER_CONCURRENCY": scenario.concurrency,
            "MAX_CONCURRENT_CALLS": scenario.lines,
            "CALLS_PER_SECOND": 5,
            "SIMULATOR_TIME_SCALE": scenario.time_scale,
        }
        if source is not None:
            overrides["PYTHONPATH"] = source
        with tempfile.TemporaryDirectory() as audio, processes() as started:
            for n in range(scenario.workers):
                env = product_env(iso, Path(audio), WORKER_ID=f"bench-{iso.tag}-{n}", **overrides)
                started.append(spawn(f"worker-{n}", [PYTHON, str(ENTRY), "worker"], env, log_dir))
            await until_saturated(redis, store, parts.keys, normal, scenario.lines)
            high = await submit(Priority.HIGH)
            deadline = time.monotonic() + 120
            while first(await store.history(high), {"calling"}) is None:
                if time.monotonic() > deadline:
                    raise SystemExit("the alert never dialed: " + started[0].tail())
                await asyncio.sleep(0.05)
            for proc in started:
                proc.stop(timeout=1.0)
        return await measure(store, normal, high)
    finally:
        await connection.close()
        await redis.aclose()
        await cleanup(iso)


async def until_saturated(
    redis: aioredis.Redis, store: JobStore, keys: Keys, normal: list[str], lines: int
) -> None:
    """Every line busy and normal jobs waiting for one."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        live = await redis.zcount(keys.call_slots, int(time.time() * 1000), "+inf")
        statuses = [await store.get_status(job_id) for job_id in normal]
        waiting = sum(s is not None and s.value == "processing" for s in statuses)
        if live >= lines and waiting > 0:
            return
        await asyncio.sleep(0.05)
    raise SystemExit("the trunk never filled")


async def measure(store: JobStore, normal: list[str], high: str) -> dict[str, Any]:
    high_history = await store.history(high)
    accepted = first(high_history, {"queued"})
    dialed = first(high_history, {"calling"})
    if accepted is None or dialed is None:
        raise SystemExit(f"the alert's history is incomplete: {high_history}")
    overtaking = 0
    frees: list[float] = []
    for job_id in normal:
        history = await store.history(job_id)
        start = first(history, {"calling"})
        if start is None:
            continue
        after = [moment(h) for h in history if moment(h) >= start and h.status.value in ENDED]
        overtaking += accepted < start < dialed
        if start < accepted and after and after[0] > accepted:
            frees.append(after[0])
    next_free = min(frees) - accepted if frees else float("nan")
    return {
        "normal_dialed_before_alert": overtaking,
        "alert_time_to_dial_s": round(dialed - accepted, 3),
        "next_line_free_s": round(next_free, 3),
    }


def median(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(run[key] for run in runs), 3)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine_info(), "baseline_ref": args.baseline}
    with tempfile.TemporaryDirectory() as logs, baseline_source(args.baseline) as old_src:
        for scenario in SCENARIOS:
            for variant, source in (("before", old_src), ("line queue", None)):
                runs = [await run_once(scenario, source, Path(logs)) for _ in range(args.repeat)]
                results[f"{scenario.name} | {variant}"] = {
                    "runs": runs,
                    "max_normal_dialed_before_alert": max(
                        r["normal_dialed_before_alert"] for r in runs
                    ),
                    "median_alert_time_to_dial_s": median(runs, "alert_time_to_dial_s"),
                    "median_next_line_free_s": median(runs, "next_line_free_s"),
                }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline", default=BASELINE_REF)
    args = parser.parse_args()
    results = asyncio.run(run(args))
    rows = []
    for name, result in results.items():
        if not isinstance(result, dict) or "runs" not in result:
            continue
        runs = result["runs"]
        late = [r["alert_time_to_dial_s"] - r["next_line_free_s"] for r in runs]
        rows.append(
            [
                name,
                " / ".join(str(r["normal_dialed_before_alert"]) for r in runs),
                " / ".join(f"{r['alert_time_to_dial_s']:.2f}" for r in runs),
                " / ".join(f"{r['next_line_free_s']:.2f}" for r in runs),
                f"{max(late):.2f}",
            ]
        )
    print_table(
        f"priority at the dial ({args.repeat} runs each; baseline {args.baseline})",
        [
            "scenario | workers",
            "normal calls dialed before the alert",
            "alert: time to dial, s",
            "next line free, s",
            "worst lag behind the free line, s",
        ],
        rows,
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "bench_priority_dial.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
