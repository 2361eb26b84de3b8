"""Worker heartbeats (every 2 s; the key expires after three missed beats)."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable

from ttsqueue.domain import iso, utcnow
from ttsqueue.logs import get_logger
from ttsqueue.store.workers import HEARTBEAT_INTERVAL_S, WorkerInfo, WorkerRegistry
from ttsqueue.worker.pipeline import JobHandler

log = get_logger("ttsqueue.worker.heartbeat")


async def heartbeat_loop(
    registry: WorkerRegistry,
    worker_id: str,
    concurrency: int,
    handler: JobHandler,
    tts_health: Callable[[], str],
) -> None:
    started_at = iso(utcnow())
    while True:
        info = WorkerInfo(
            worker_id=worker_id,
            current_jobs=sorted(handler.in_flight),
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
        await asyncio.sleep(HEARTBEAT_INTERVAL_S)
