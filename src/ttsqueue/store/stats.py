"""Lifetime counters and throughput read back for `/queue/stats` (never with KEYS)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from ttsqueue.store.keys import Keys

THROUGHPUT_WINDOW_MIN = 15


@dataclass(frozen=True, slots=True)
class JobMetrics:
    processed: int
    succeeded: int
    failed: int
    success_rate: float
    avg_processing_ms: float
    throughput_per_min: float
    by_outcome: dict[str, int]
    per_minute: list[tuple[int, int]]


class StatsReader:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    async def job_metrics(self) -> JobMetrics:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.metrics)
            pipe.hgetall(self.keys.outcomes)
            pipe.hgetall(self.keys.throughput)
            metrics, outcomes, minutes = await pipe.execute()
        processed = int(metrics.get("processed", 0))
        succeeded = int(metrics.get("succeeded", 0))
        failed = int(metrics.get("failed", 0))
        total_ms = int(metrics.get("processing_ms_total", 0))
        now_min = int(time.time()) // 60
        window = [
            (minute, int(minutes.get(str(minute), 0)))
            for minute in range(now_min - THROUGHPUT_WINDOW_MIN + 1, now_min + 1)
        ]
        await self._prune_minutes(minutes, now_min)
        finished = succeeded + failed
        return JobMetrics(
            processed=processed,
            succeeded=succeeded,
            failed=failed,
            success_rate=round(succeeded / finished, 4) if finished else 1.0,
            avg_processing_ms=round(total_ms / processed, 1) if processed else 0.0,
            throughput_per_min=round(sum(n for _, n in window) / THROUGHPUT_WINDOW_MIN, 2),
            by_outcome={name: int(n) for name, n in outcomes.items()},
            per_minute=window,
        )

    async def _prune_minutes(self, minutes: dict[str, str], now_min: int) -> None:
        stale = [m for m in minutes if int(m) < now_min - 60]
        if stale:
            await self.client.hdel(self.keys.throughput, *stale)
