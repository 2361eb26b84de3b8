"""Fault a: a random worker SIGKILLed every 2 s through a 500-job run, always re-spawned.

Every accepted job must end completed, none lost, and no attempt dialed twice, counted from
both sides: the workers' `originating call` lines and the dialer's own record of the calls
it received (`simulated call placed`), per call id, are never more than 1.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time

import httpx
import pytest
import redis.asyncio as aioredis

from tests.faults.stack import (
    DIALER_PLACED,
    Proc,
    Stack,
    accepted_ids,
    counts_are_exact,
    originations,
    post_calls,
    statuses,
    wait_depths,
    wait_terminal,
)
from tests.figures import record

pytestmark = pytest.mark.timeout(300)

JOBS = 500
WORKERS = 3
KILL_EVERY_S = 2.0
RUN_LIMIT_S = 180.0


async def test_sigkill_a_random_worker_every_two_seconds(
    stack: Stack, fault_redis: aioredis.Redis
) -> None:
    # Calls of about 2 s, 30 lines for 3 workers: most kills land on calls in progress, and
    # the run lasts long enough for many kills (a followed call holds a line, not a slot).
    stack.overrides.update(
        SIMULATOR_TIME_SCALE=0.3,
        WORKER_CONCURRENCY=10,
        MAX_CONCURRENT_CALLS=30,
        MAX_DELIVERIES=50,
    )
    await stack.start_api()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        replies = await post_calls(client, JOBS)
    assert [r.status_code for r in replies] == [202] * JOBS
    # Workers start on the whole backlog, so a slow submission cannot shorten the run.
    generation = 0
    workers: list[Proc] = [stack.start_worker(f"w{i}-g0") for i in range(WORKERS)]
    ids = accepted_ids(replies)

    rng = random.Random(20240605)
    kills = 0
    started = time.monotonic()
    try:
        while time.monotonic() - started < RUN_LIMIT_S:
            await asyncio.sleep(KILL_EVERY_S)
            now = await statuses(fault_redis, stack.keys, ids)
            if all(s in ("completed", "failed") for s in now.values()):
                break
            victim = rng.randrange(WORKERS)
            workers[victim].signal(signal.SIGKILL)
            await asyncio.to_thread(workers[victim].popen.wait, 10)
            kills += 1
            generation += 1
            workers[victim] = stack.start_worker(f"w{victim}-g{generation}")
        final = await wait_terminal(fault_redis, stack.keys, ids, timeout=30)
    except BaseException:
        stack.dump_logs()
        raise
    elapsed = time.monotonic() - started

    dialed = originations(stack.worker_logs())
    twice = {call_id: n for call_id, n in dialed.items() if n > 1}
    assert twice == {}, f"calls originated more than once: {twice}"
    placed = originations(stack.worker_logs(), DIALER_PLACED)
    placed_twice = {call_id: n for call_id, n in placed.items() if n > 1}
    assert placed_twice == {}, f"the dialer received these calls more than once: {placed_twice}"
    # Each call the dialer received was logged by the worker first; a kill can fall between.
    assert set(placed) <= set(dialed)
    assert len(placed) >= len(dialed) - kills
    assert set(final.values()) == {"completed"}
    # The kills did land in the middle of jobs: some attempts were delivered again.
    redelivered = 0
    for job_id in ids:
        if int(await fault_redis.get(stack.keys.deliveries(job_id, 1)) or 0) > 1:
            redelivered += 1
    assert kills >= 5
    assert redelivered > 0
    empty = {"normal": 0, "priority": 0, "retry": 0, "dead": 0}
    left = await wait_depths(stack.rabbit.url, stack.names, empty)
    assert {label: left[label] for label in empty} == empty
    counts = await counts_are_exact(fault_redis, stack.keys)
    assert counts["total"] == counts["completed"] == JOBS
    assert counts["metrics.processed"] == counts["metrics.succeeded"] == JOBS
    record(
        "a_sigkill_workers",
        jobs=JOBS,
        kills=kills,
        redelivered=redelivered,
        jobs_lost=JOBS - counts["completed"],
        duplicate_originations=len(twice),
        duplicate_originations_dialer=len(placed_twice),
        originations=sum(dialed.values()),
        originations_dialer=sum(placed.values()),
        http_5xx=sum(r.status_code >= 500 for r in replies),
        seconds=round(elapsed, 1),
    )
