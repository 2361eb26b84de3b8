"""Worker liveness (heartbeats into expiring keys) and per-worker counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis

from ttsqueue.store.keys import Keys

HEARTBEAT_INTERVAL_S = 2.0
# A worker is gone after three missed beats.
HEARTBEAT_TTL_S = 6
# A worker's counters (`worker:<id>:stats`, counted by transition.lua, which sets this expiry
# when they start) are kept a day after its last heartbeat, which renews it.
WORKER_STATS_TTL_S = 86400


@dataclass(slots=True)
class WorkerInfo:
    worker_id: str
    status: str = "idle"
    current_jobs: list[str] = field(default_factory=list)
    processed: int = 0
    failed: int = 0
    concurrency: int = 1
    started_at: str | None = None
    last_heartbeat: str | None = None
    host: str | None = None
    pid: int | None = None
    tts: str = "ok"


class WorkerRegistry:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    async def beat(self, info: WorkerInfo) -> None:
        key = self.keys.worker(info.worker_id)
        mapping: dict[Any, str] = {
            "status": "busy" if info.current_jobs else "idle",
            "current_jobs": orjson.dumps(info.current_jobs).decode(),
            "concurrency": str(info.concurrency),
            "started_at": info.started_at or "",
            "last_heartbeat": info.last_heartbeat or "",
            "host": info.host or "",
            "pid": str(info.pid or ""),
            "tts": info.tts,
        }
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, HEARTBEAT_TTL_S)
            pipe.expire(self.keys.worker_stats(info.worker_id), WORKER_STATS_TTL_S)
            pipe.sadd(self.keys.workers, info.worker_id)
            await pipe.execute()

    async def deregister(self, worker_id: str) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.worker(worker_id))
            pipe.srem(self.keys.workers, worker_id)
            await pipe.execute()

    async def alive(self) -> list[WorkerInfo]:
        """Workers whose heartbeat has not expired; forgets the ones that have."""
        ids = sorted(str(member) for member in await self.client.smembers(self.keys.workers))
        if not ids:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for worker_id in ids:
                pipe.hgetall(self.keys.worker(worker_id))
                pipe.hgetall(self.keys.worker_stats(worker_id))
            replies = await pipe.execute()
        workers: list[WorkerInfo] = []
        gone: list[str] = []
        for i, worker_id in enumerate(ids):
            beat, stats = replies[2 * i], replies[2 * i + 1]
            if not beat:
                gone.append(worker_id)
                continue
            workers.append(
                WorkerInfo(
                    worker_id=worker_id,
                    status=beat.get("status", "idle"),
                    current_jobs=orjson.loads(beat.get("current_jobs", "[]")),
                    processed=int(stats.get("processed", 0)),
                    failed=int(stats.get("failed", 0)),
                    concurrency=int(beat.get("concurrency", 1)),
                    started_at=beat.get("started_at") or None,
                    last_heartbeat=beat.get("last_heartbeat") or None,
                    host=beat.get("host") or None,
                    pid=int(beat["pid"]) if beat.get("pid") else None,
                    tts=beat.get("tts", "ok"),
                )
            )
        if gone:
            await self.client.srem(self.keys.workers, *gone)
        return workers
