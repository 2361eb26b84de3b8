"""Fault c: Redis (append-only file on) restarted in the middle of a 500-job run.

Clients keep submitting throughout; while Redis is down the API answers 503. Afterwards no
accepted job is lost, none was dialed twice, and the counters are exact: the status indexes
add up to the total, and the lifetime counters match the terminal jobs one for one.

A record whose creation reached Redis just before it stopped, the reply lost, was answered
503: it stays in the index, never acknowledged, and is never dialed (the sweeper fails it
after SWEEP_AFTER_SECONDS instead of sending it a message).
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
    statuses,
    wait_terminal,
)
from tests.figures import record
from ttsqueue.domain import JobStatus
from ttsqueue.worker.sweeper import NEVER_CONFIRMED

pytestmark = pytest.mark.timeout(300)

JOBS = 500
WORKERS = 3
OUTAGE_S = 5.0


async def test_redis_restart_mid_run(stack: Stack, fault_redis: aioredis.Redis) -> None:
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
                submitter, client, stack.redis.stop, stack.redis.start, OUTAGE_S
            )
            await asyncio.wait_for(submitting, timeout=120)
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

    # Records the clients were told 503 for: never acknowledged, never dialed.
    indexed = {str(job_id) for job_id in await fault_redis.zrange(stack.keys.index, 0, -1)}
    assert set(submitter.accepted) <= indexed
    unacknowledged = sorted(indexed - set(submitter.accepted))
    left = await statuses(fault_redis, stack.keys, unacknowledged)
    assert set(left.values()) <= {"queued", "scheduled", "failed"}, left
    for job_id, status in left.items():
        if status == "failed":
            assert await fault_redis.hget(stack.keys.job(job_id), "error") == NEVER_CONFIRMED
        else:
            assert await fault_redis.zscore(stack.keys.unconfirmed, job_id) is not None
    dialed_jobs = {call_id[:32] for call_id in dialed}
    assert not {job_id.replace("-", "") for job_id in unacknowledged} & dialed_jobs
    refused = sum(1 for status in left.values() if status == "failed")

    counts = await counts_are_exact(fault_redis, stack.keys)
    completed, failed = counts["completed"], counts["failed"]
    assert counts["total"] == accepted + len(unacknowledged)
    assert sum(counts[status.value] for status in JobStatus) == counts["total"]
    assert completed + failed == accepted + refused
    assert counts["metrics.processed"] == completed + failed
    assert counts["metrics.succeeded"] == completed
    assert counts.get("metrics.failed", 0) == failed
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        stats = (await client.get("/queue/stats")).json()["statistics"]
    assert stats["jobs"]["total"] == accepted + len(unacknowledged)
    assert sum(stats["jobs"]["by_status"].values()) == accepted + len(unacknowledged)
    assert stats["metrics"]["processed"] == completed + failed
    assert all(proc.alive() for proc in stack.procs)
    record(
        "c_redis_restart",
        accepted=accepted,
        refused_503=submitter.codes[503],
        http_5xx_other_than_503=submitter.other_5xx(),
        jobs_lost=accepted + refused - completed - failed,
        records_never_acknowledged=len(unacknowledged),
        failed=failed,
        duplicate_originations=len(twice),
        counters_exact=True,
        seconds=round(elapsed, 1),
    )
