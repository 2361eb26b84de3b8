"""Every process the supervisor starts runs with the configuration `start` was given.

The scenario of the report, as a person types it: the settings only in the environment of
`ttsqueue start` (API key, rate limit, workers, concurrency, simulated-call speed), jobs
submitted, then for a while a random worker SIGKILLed and a plain `ttsqueue scale 3` run
(an environment with none of those settings) after each kill, then the broker bounced. Before
the configuration was recorded, the replacement workers ran with the defaults (prefetch 1,
calls of full simulated length) and the backlog crawled for minutes.

Checked, besides the totals (every job completed, none lost, no attempt dialed twice, from
the workers' and the dialer's side): the prefetch of every consumer on the private broker
(`rabbitmqctl list_consumers`) is the one the recorded WORKER_CONCURRENCY and
MAX_CONCURRENT_CALLS give, after the kills and after the bounce; every call lasted what the
recorded SIMULATOR_TIME_SCALE makes it (a worker on the defaults makes every answered call last
more than a second); and the drain rate is above what the defaults could ever reach (10 lines,
3 s or more per call: 3.3 jobs/s). The kill phase is a number of kills (5) rather than the
report's 25 s, so that a loaded machine, where each `scale` takes longer, runs the same
scenario; the concurrency-1 cases use fewer jobs to stay around a minute.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from tests.faults.stack import (
    CALL_BODY,
    DIALER_PLACED,
    TTSQUEUE,
    Stack,
    counts_are_exact,
    originations,
    statuses,
    wait_terminal,
)
from tests.figures import record
from tests.ports import free_port
from ttsqueue.config import Settings
from ttsqueue.ops import processes
from ttsqueue.worker.runner import prefetch_for

pytestmark = pytest.mark.timeout(400)

WORKERS = 3
KEY = "k-recorded"
# A call of the default configuration lasts at least this long (ring 2 s + answer wait 1 s):
# at the recorded SIMULATOR_TIME_SCALE of 0.05 an answered call lasts well under it.
DEFAULT_TALK_FLOOR_S = 1.0
# Workers on the defaults drain at most this: every call lasts 3 s or more and holds one of
# the default MAX_CONCURRENT_CALLS lines (a followed call holds no worker slot, so three
# workers of one slot fill them all).
DEFAULT_MAX_RATE = Settings.model_fields["MAX_CONCURRENT_CALLS"].default / 3.0


@dataclass(frozen=True)
class Case:
    name: str
    jobs: int
    concurrency: int
    kills: int
    bounce: bool


CASES = [
    Case("issue_scenario", jobs=300, concurrency=4, kills=5, bounce=True),
    Case("kills_scale_c8", jobs=300, concurrency=8, kills=5, bounce=False),
    Case("bounce_only_c1", jobs=150, concurrency=1, kills=0, bounce=True),
    Case("bounce_kills_c1", jobs=60, concurrency=1, kills=3, bounce=True),
]


class Deployment:
    """`ttsqueue start|scale|stop` in a checkout-like directory of its own."""

    def __init__(self, stack: Stack, root: Path) -> None:
        self.stack = stack
        self.root = root
        self.api_url = stack.api_url

    def plain_env(self) -> dict[str, str]:
        """What a new shell has: none of the product's settings."""
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
        return {name: os.environ[name] for name in keep if name in os.environ}

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(TTSQUEUE), *args],
            cwd=self.root,
            env=env if env is not None else self.plain_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def worker_pids(self) -> dict[int, int]:
        found = {}
        for pid_file in (self.root / "var" / "run").glob("worker-*.pid"):
            pid = processes.live_pid(pid_file, "worker")
            if pid is not None:
                found[int(pid_file.stem.split("-")[1])] = pid
        return found

    def worker_logs(self) -> list[Path]:
        return sorted((self.root / "var" / "log").glob("worker-*.log"))

    def api_logs(self) -> list[Path]:
        return sorted((self.root / "var" / "log").glob("api*.log"))

    def stop(self) -> None:
        self.run("stop", "--timeout", "20")
        for pid_file in (self.root / "var" / "run").glob("*.pid"):
            pid = processes.read_pid(pid_file)
            if pid is not None and processes.is_alive(pid):
                processes.send_signal(pid, signal.SIGKILL)


def consumers(stack: Stack) -> list[tuple[str, int]]:
    """(queue, prefetch) of every consumer of the stack's work queues."""
    out = stack.rabbit.ctl(
        "list_consumers", "-q", "--no-table-headers", "queue_name", "prefetch_count"
    )
    work = {stack.names.calls, stack.names.priority}
    rows = [line.split("\t") for line in out.splitlines() if line.strip()]
    return [(row[0], int(row[1])) for row in rows if row[0] in work]


async def wait_consumers(stack: Stack, count: int, timeout: float = 90.0) -> list[tuple[str, int]]:
    """The consumers once `count` of them are there (each worker has one per work queue)."""
    deadline = time.monotonic() + timeout
    while True:
        found = await asyncio.to_thread(consumers, stack)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.5)


async def submit(client: httpx.AsyncClient, jobs: int) -> list[str]:
    """Submit as a careful client does: a request whose connection dropped before the answer
    (e.g. a keep-alive connection the server closed as it was reused) is sent again with the
    same Idempotency-Key, so it can never make two jobs."""
    gate = asyncio.Semaphore(16)
    run = uuid.uuid4().hex

    async def one(index: int) -> str:
        headers = {"X-API-Key": KEY, "Idempotency-Key": f"{run}-{index}"}
        async with gate:
            for attempt in range(3):
                try:
                    reply = await client.post("/tts/call", json=CALL_BODY, headers=headers)
                    break
                except httpx.TransportError:
                    if attempt == 2:
                        raise
            assert reply.status_code == 202, reply.text
            return str(reply.json()["job_id"])

    tasks = [asyncio.create_task(one(index)) for index in range(jobs)]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:  # none left running on a client about to close
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def kill_loop(deployment: Deployment, count: int, rng: random.Random) -> int:
    """`count` times: SIGKILL a random worker and run a plain `scale 3`, at least 2 s apart
    (counted, not timed: on a loaded machine each `scale` takes longer)."""
    kills = 0
    for _ in range(count):
        tick = time.monotonic()
        live = deployment.worker_pids()
        if live:
            victim = live[rng.choice(sorted(live))]
            processes.send_signal(victim, signal.SIGKILL)
            kills += 1
        scaled = await asyncio.to_thread(deployment.run, "scale", str(WORKERS))
        assert scaled.returncode == 0, scaled.stdout + scaled.stderr
        assert "differs from the configuration recorded at start" in scaled.stdout
        await asyncio.sleep(max(0.0, 2.0 - (time.monotonic() - tick)))
    return kills


async def talk_times(client: aioredis.Redis, stack: Stack, ids: list[str]) -> list[float]:
    async with client.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(stack.keys.job(job_id), "call")
        rows = await pipe.execute()
    return [float(orjson.loads(row)["talk_s"]) for row in rows]


async def drain_seconds(client: aioredis.Redis, stack: Stack, ids: list[str]) -> float:
    """From the first job taken to the last one finished, by the jobs' own timestamps."""
    async with client.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hmget(stack.keys.job(job_id), ["processed_at", "completed_at"])
        rows = await pipe.execute()
    first = min(datetime.fromisoformat(row[0]).timestamp() for row in rows)
    last = max(datetime.fromisoformat(row[1]).timestamp() for row in rows)
    return max(0.001, last - first)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_every_worker_runs_with_the_recorded_configuration(
    stack: Stack, fault_redis: aioredis.Redis, tmp_path: Path, case: Case
) -> None:
    root = tmp_path / "checkout"
    root.mkdir()
    deployment = Deployment(stack, root)
    start_env = {
        **deployment.plain_env(),
        **{k: v for k, v in stack.env().items() if k not in os.environ},
        "API_KEYS": KEY,
        "RATE_LIMIT_PER_MINUTE": "100000",
        "WORKERS": str(WORKERS),
        "WORKER_CONCURRENCY": str(case.concurrency),
        # As many lines as the workers have slots: a backlog remains while workers are killed
        # (a followed call holds a line, not a slot).
        "MAX_CONCURRENT_CALLS": str(WORKERS * case.concurrency),
        "SIMULATOR_TIME_SCALE": "0.05",
        "DASHBOARD_PORT": str(free_port()),
        "DASHBOARD_HOST": "127.0.0.1",
        "SWEEP_AFTER_SECONDS": "15",
        "LOG_FORMAT": "json",
    }
    rng = random.Random(f"{case.name}-20261202")
    try:
        started = await asyncio.to_thread(deployment.run, "start", "--timeout", "90", env=start_env)
        assert started.returncode == 0, started.stdout + started.stderr
        assert (root / "var" / "run" / "config.json").stat().st_mode & 0o777 == 0o600
        # A plain shell reaches the API with the recorded port and key.
        status = await asyncio.to_thread(deployment.run, "status", "--json")
        assert status.returncode == 0, status.stdout + status.stderr
        began = time.monotonic()
        # The kills start with the submissions, so that they land on jobs in progress.
        killing = asyncio.create_task(kill_loop(deployment, case.kills, rng))
        async with httpx.AsyncClient(base_url=deployment.api_url, timeout=60) as client:
            ids = await submit(client, case.jobs)
        kills = await killing
        done_during_kills = sum(
            status == "completed"
            for status in (await statuses(fault_redis, stack.keys, ids)).values()
        )
        after_kills = await wait_consumers(stack, 2 * WORKERS)
        if case.bounce:
            await asyncio.to_thread(stack.rabbit.restart)
        after_bounce = await wait_consumers(stack, 2 * WORKERS)
        final = await wait_terminal(fault_redis, stack.keys, ids, timeout=240)
        elapsed = time.monotonic() - began
    except BaseException:
        for log in [*deployment.worker_logs(), *deployment.api_logs()]:
            print(f"--- {log.name}\n" + "\n".join(log.read_text().splitlines()[-10:]))
        raise
    finally:
        await asyncio.to_thread(deployment.stop)

    assert set(final.values()) == {"completed"}
    dialed = originations(deployment.worker_logs())
    twice = {call_id: n for call_id, n in dialed.items() if n > 1}
    assert twice == {}, f"calls originated more than once: {twice}"
    placed = originations(deployment.worker_logs(), DIALER_PLACED)
    placed_twice = {call_id: n for call_id, n in placed.items() if n > 1}
    assert placed_twice == {}
    counts = await counts_are_exact(fault_redis, stack.keys)
    assert counts["total"] == counts["completed"] == case.jobs
    # The recorded prefetch on every consumer, after the kills and after the bounce.
    for found in (after_kills, after_bounce):
        assert len(found) >= 2 * WORKERS, found
        expected = prefetch_for(case.concurrency, WORKERS * case.concurrency)
        assert {prefetch for _, prefetch in found} == {expected}, found
    talks = await talk_times(fault_redis, stack, ids)
    assert max(talks) < DEFAULT_TALK_FLOOR_S, max(talks)
    rate = case.jobs / await drain_seconds(fault_redis, stack, ids)
    assert rate > DEFAULT_MAX_RATE, rate
    assert kills == case.kills
    record(
        f"recorded_config_{case.name}",
        jobs=case.jobs,
        concurrency=case.concurrency,
        kills=kills,
        completed_when_kills_ended=done_during_kills,
        broker_bounce=case.bounce,
        prefetch=sorted({prefetch for _, prefetch in after_bounce}),
        consumers=len(after_bounce),
        jobs_lost=case.jobs - counts["completed"],
        duplicate_originations=len(twice),
        max_talk_s=round(max(talks), 3),
        drain_jobs_per_s=round(rate, 2),
        default_config_ceiling_jobs_per_s=round(DEFAULT_MAX_RATE, 2),
        seconds=round(elapsed, 1),
        python=sys.version_info[:2],
    )
