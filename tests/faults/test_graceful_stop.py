"""Fault d: `ttsqueue scale` down and `ttsqueue stop` (SIGTERM) while calls are in progress.

The supervisor runs the real processes with its state in a temp var dir. A stopped worker
finishes the calls it has in flight and hands back what it had not started: right after
each command returns, the jobs those workers were calling are completed, nothing is left
`processing` or `calling`, and every job still waiting has its message back in the queue.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
import redis.asyncio as aioredis

from tests.faults.stack import (
    TTSQUEUE,
    Stack,
    accepted_ids,
    originations,
    post_calls,
    wait_depths,
    wait_terminal,
)
from tests.figures import record
from tests.ports import free_port
from ttsqueue.domain import JobStatus
from ttsqueue.store.keys import Keys
from ttsqueue.store.workers import WorkerRegistry

pytestmark = pytest.mark.timeout(240)

JOBS = 120  # about 45 s of calls on 8 lines: a backlog outlasts a slow scale and stop
IN_FLIGHT = frozenset({JobStatus.PROCESSING.value, JobStatus.CALLING.value})


@pytest.fixture
def supervised(stack: Stack) -> Iterator[Stack]:
    # Calls of about 3 s: long enough to be caught in flight, far shorter than the
    # 25 s a stopping worker gives them. A trunk of 8 lines keeps a backlog for the
    # workers that stay (a followed call holds a line, not a worker slot).
    stack.overrides.update(
        TTSQ_VAR_DIR=stack.tmp / "var",
        WORKERS=3,
        WORKER_CONCURRENCY=4,
        MAX_CONCURRENT_CALLS=8,
        SIMULATOR_TIME_SCALE=0.5,
        DASHBOARD_PORT=free_port(),
        DASHBOARD_HOST="127.0.0.1",
    )
    try:
        yield stack
    finally:
        ttsqueue(stack, "stop")


def ttsqueue(stack: Stack, *args: str) -> str:
    done = subprocess.run(
        [str(TTSQUEUE), *args],
        env=stack.env(),
        cwd=stack.tmp,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def jobs_by_worker(
    client: aioredis.Redis, stack: Stack, ids: list[str]
) -> dict[str, tuple[str, str]]:
    """job id -> (status, worker id)."""
    async with client.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hmget(stack.keys.job(job_id), ["status", "worker_id"])
        rows = await pipe.execute()
    return {job_id: (row[0], row[1] or "") for job_id, row in zip(ids, rows, strict=True)}


async def until_calling(
    client: aioredis.Redis, stack: Stack, ids: list[str], suffixes: tuple[str, ...], n: int
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = await jobs_by_worker(client, stack, ids)
        calling = [s for s, worker in now.values() if s == "calling" and worker.endswith(suffixes)]
        if len(calling) >= n:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {n} calls in progress on {suffixes}")


def calling_on(jobs: dict[str, tuple[str, str]], suffixes: tuple[str, ...]) -> set[str]:
    return {
        job_id
        for job_id, (status, worker) in jobs.items()
        if status in IN_FLIGHT and worker.endswith(suffixes)
    }


async def test_scale_down_and_stop_lose_nothing(
    supervised: Stack, fault_redis: aioredis.Redis
) -> None:
    stack = supervised
    started = time.monotonic()
    await asyncio.to_thread(ttsqueue, stack, "start")
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        replies = await post_calls(client, JOBS, concurrency=8)
    assert [r.status_code for r in replies] == [202] * JOBS
    ids = accepted_ids(replies)

    # Scale 3 -> 1 while workers 2 and 3 have calls up.
    await until_calling(fault_redis, stack, ids, ("-w2", "-w3"), 4)
    before = calling_on(await jobs_by_worker(fault_redis, stack, ids), ("-w2", "-w3"))
    scaled = await asyncio.to_thread(ttsqueue, stack, "scale", "1")
    assert "killed" not in scaled
    after = await jobs_by_worker(fault_redis, stack, ids)
    assert {after[job_id][0] for job_id in before} == {"completed"}
    assert not calling_on(after, ("-w2", "-w3"))

    # SIGTERM to everything while worker 1 has calls up.
    await until_calling(fault_redis, stack, ids, ("-w1",), 2)
    before_stop = calling_on(await jobs_by_worker(fault_redis, stack, ids), ("-w1",))
    stopped = await asyncio.to_thread(ttsqueue, stack, "stop")
    assert "killed" not in stopped
    after_stop = await jobs_by_worker(fault_redis, stack, ids)
    assert {after_stop[job_id][0] for job_id in before_stop} == {"completed"}
    statuses_now = [status for status, _ in after_stop.values()]
    assert not IN_FLIGHT & set(statuses_now)
    waiting = statuses_now.count("queued")
    assert waiting > 0
    left = await wait_depths(stack.rabbit.url, stack.names, {"normal": waiting})
    assert left["normal"] == waiting
    assert await WorkerRegistry(fault_redis, Keys(stack.redis_prefix)).alive() == []

    # Started again, the waiting jobs are done; none was dialed twice.
    stack.overrides["WORKERS"] = 2
    await asyncio.to_thread(ttsqueue, stack, "start")
    final = await wait_terminal(fault_redis, stack.keys, ids, timeout=120)
    assert set(final.values()) == {"completed"}
    logs = sorted((stack.tmp / "var" / "log").glob("worker-*.log"))
    dialed = originations(logs)
    assert len(dialed) == JOBS
    assert set(dialed.values()) == {1}
    record(
        "d_scale_down_and_sigterm",
        jobs=JOBS,
        finished_during_scale_down=len(before),
        finished_during_stop=len(before_stop),
        requeued_at_stop=waiting,
        jobs_lost=JOBS - list(final.values()).count("completed"),
        duplicate_originations=sum(n > 1 for n in dialed.values()),
        http_5xx=sum(r.status_code >= 500 for r in replies),
        seconds=round(time.monotonic() - started, 1),
    )
