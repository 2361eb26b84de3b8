"""Fault b: RabbitMQ stopped and restarted in the middle of a 500-job run.

Clients keep submitting throughout. While the broker is down the API must answer 503 (never
500, never a dropped connection); afterwards API and workers reconnect by themselves, and
every job that was accepted (202) ends in a terminal state.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import redis.asyncio as aioredis

from tests.faults.stack import (
    Stack,
    Submitter,
    counts_are_exact,
    health_after_recovery,
    originations,
    outage,
    wait_terminal,
)
from tests.figures import record

pytestmark = pytest.mark.timeout(300)

JOBS = 500
WORKERS = 3
OUTAGE_S = 5.0


async def test_broker_restart_mid_run(stack: Stack, fault_redis: aioredis.Redis) -> None:
    stack.overrides.update(SIMULATOR_TIME_SCALE=0.1, WORKER_CONCURRENCY=8)
    await stack.start_api()
    for index in range(WORKERS):
        stack.start_worker(f"w{index}")
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as client:
        submitter = Submitter(client, JOBS)
        submitting = asyncio.create_task(submitter.run())
        try:
            await submitter.until_accepted(JOBS // 3)
            health_while_down = await outage(
                submitter, client, stack.rabbit.stop, stack.rabbit.start, OUTAGE_S
            )
            restarted = time.monotonic()
            await asyncio.wait_for(submitting, timeout=120)
            back_after = time.monotonic() - restarted
            final = await wait_terminal(fault_redis, stack.keys, submitter.accepted, timeout=120)
            health_after = await health_after_recovery(client)
        except BaseException:
            submitting.cancel()
            stack.dump_logs()
            raise
    elapsed = time.monotonic() - started

    assert submitter.transport_errors == []
    assert set(submitter.codes) <= {202, 503}, submitter.codes
    assert submitter.during_outage[503] > 0, submitter.during_outage
    assert health_while_down
    assert set(health_while_down) == {503}
    assert health_after == 200
    accepted = len(submitter.accepted)
    assert len(set(submitter.accepted)) == accepted >= JOBS
    assert set(final.values()) <= {"completed", "failed"}
    dialed = originations(stack.worker_logs())
    twice = {call_id: n for call_id, n in dialed.items() if n > 1}
    assert twice == {}
    counts = await counts_are_exact(fault_redis, stack.keys)
    # Records exist for accepted jobs only: a 503 left nothing behind.
    assert counts["total"] == accepted
    assert counts["completed"] + counts["failed"] == accepted
    assert all(proc.alive() for proc in stack.procs)
    record(
        "b_rabbitmq_restart",
        accepted=accepted,
        refused_503=submitter.codes[503],
        http_5xx_other_than_503=submitter.other_5xx(),
        jobs_lost=accepted - counts["completed"] - counts["failed"],
        failed=counts["failed"],
        duplicate_originations=len(twice),
        submissions_back_after_s=round(back_after, 1),
        seconds=round(elapsed, 1),
    )
