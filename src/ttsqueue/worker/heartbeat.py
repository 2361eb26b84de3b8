"""Worker heartbeats: every 2 s (the key expires after three missed beats), and sooner when
the worker goes from idle to busy or back, so that `status` and the dashboard do not show a
finished worker busy until its next beat. Early beats are at least EARLY_BEAT_MIN_S apart: a
worker whose jobs come one at a time beats at most that often."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable
from typing import Protocol

from ttsqueue.domain import iso, utcnow
from ttsqueue.logs import get_logger
from ttsqueue.store.workers import HEARTBEAT_INTERVAL_S, WorkerInfo, WorkerRegistry

log = get_logger("ttsqueue.worker.heartbeat")

EARLY_BEAT_MIN_S = 0.5


class Occupancy(Protocol):
    """What a heartbeat reports of the worker's jobs (the JobHandler)."""

    @property
    def in_flight(self) -> set[str]: ...

    @property
    def busy_changed(self) -> asyncio.Event: ...


async def heartbeat_loop(
    registry: WorkerRegistry,
    worker_id: str,
    concurrency: int,
    jobs: Occupancy,
    tts_health: Callable[[], str],
    interval_s: float = HEARTBEAT_INTERVAL_S,
) -> None:
    started_at = iso(utcnow())
    while True:
        # Cleared before the jobs are read: a change after this is the next beat's.
        jobs.busy_changed.clear()
        info = WorkerInfo(
            worker_id=worker_id,
            current_jobs=sorted(jobs.in_flight),
            concurrency=concurrency,
            started_at=started_at,
            last_heartbeat=iso(utcnow()),
            host=socket.gethostname(),
            pid=os.getpid(),
            tts=tts_health(),
        )
        try:
            await registry.beat(info)
        except Exception as exc:  # Redis blip: the next beat tries again
            log.warning("heartbeat failed", error=repr(exc))
        await asyncio.sleep(min(EARLY_BEAT_MIN_S, interval_s))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                jobs.busy_changed.wait(), max(0.0, interval_s - EARLY_BEAT_MIN_S)
            )
