"""A worker's heartbeat says at once when it goes busy or idle, not at its next regular beat:
the regular interval here is a minute, so only the early beat can show each change."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import pytest
import redis.asyncio as aioredis

from ttsqueue.config import Settings
from ttsqueue.store.keys import Keys
from ttsqueue.store.workers import WorkerInfo, WorkerRegistry
from ttsqueue.worker.heartbeat import heartbeat_loop

pytestmark = pytest.mark.timeout(60)

WORKER = "heartbeat-test-worker"


@dataclass
class Jobs:
    in_flight: set[str] = field(default_factory=set)
    busy_changed: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self, job_id: str) -> None:
        self.in_flight.add(job_id)
        self.busy_changed.set()

    def finish(self, job_id: str) -> None:
        self.in_flight.discard(job_id)
        self.busy_changed.set()


async def seen_with(registry: WorkerRegistry, jobs: list[str], timeout: float = 20.0) -> None:
    """Until the registry shows the worker with exactly `jobs` in flight."""
    deadline = time.monotonic() + timeout
    while True:
        mine: list[WorkerInfo] = [w for w in await registry.alive() if w.worker_id == WORKER]
        if mine and mine[0].current_jobs == jobs:
            return
        assert time.monotonic() < deadline, f"the registry never showed {jobs}: {mine}"
        await asyncio.sleep(0.05)


async def test_going_busy_and_idle_is_reported_before_the_next_regular_beat(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    registry = WorkerRegistry(redis_client, Keys(settings.REDIS_PREFIX))
    jobs = Jobs()
    beats = asyncio.create_task(
        heartbeat_loop(registry, WORKER, 1, jobs, lambda: "ok", interval_s=60.0)
    )
    try:
        await seen_with(registry, [])
        jobs.start("job-1")
        await seen_with(registry, ["job-1"])
        jobs.finish("job-1")
        await seen_with(registry, [])
    finally:
        beats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beats
        await registry.deregister(WORKER)
