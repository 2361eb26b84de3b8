"""The statistics behind `GET /queue/stats` (SPEC §2), shared by the API and the dashboard.

RabbitMQ and Redis are read separately so that a view which must keep working while one of
them is down (the dashboard) can combine what it has; `/queue/stats` needs both.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from ttsqueue.asterisk_servers import AsteriskServer
from ttsqueue.broker.topology import QueueInspector
from ttsqueue.store.jobs import JobStore
from ttsqueue.store.keys import Keys
from ttsqueue.store.lines import LineFigures, read_lines
from ttsqueue.store.stats import JobMetrics, StatsReader
from ttsqueue.store.workers import WorkerInfo, WorkerRegistry


@dataclass(frozen=True, slots=True)
class StatsSources:
    redis: aioredis.Redis
    store: JobStore
    registry: WorkerRegistry
    stats: StatsReader
    keys: Keys
    # settings.asterisk_servers, and what a server no worker reports about is shown as.
    servers: list[AsteriskServer] = field(default_factory=list)
    dialer_state: str = "unknown"


@dataclass(frozen=True, slots=True)
class RedisFigures:
    """Everything the statistics take from Redis, read in one go."""

    total_jobs: int
    by_status: dict[str, int]
    workers: list[WorkerInfo]
    metrics: JobMetrics
    cache: dict[str, str]
    cache_entries: int
    lines: LineFigures


async def read_redis_figures(src: StatsSources) -> RedisFigures:
    keys = src.keys
    (total, by_status), workers, metrics, cache, entries, lines = await asyncio.gather(
        src.store.counts_by_status(),
        src.registry.alive(),
        src.stats.job_metrics(),
        src.redis.hgetall(keys.cache_stats),
        src.redis.zcard(keys.cache_lru),
        read_lines(src.redis, keys, src.servers, src.dialer_state),
    )
    return RedisFigures(
        total_jobs=total,
        by_status=by_status,
        workers=workers,
        metrics=metrics,
        cache={str(name): str(value) for name, value in cache.items()},
        cache_entries=int(entries),
        lines=lines,
    )


def worker_row(w: WorkerInfo) -> dict[str, Any]:
    return {
        "worker_id": w.worker_id,
        "status": "busy" if w.current_jobs else "idle",
        "current_jobs": w.current_jobs,
        "processed": w.processed,
        "failed": w.failed,
        "concurrency": w.concurrency,
        "started_at": w.started_at,
        "last_heartbeat": w.last_heartbeat,
    }


def redis_statistics(fig: RedisFigures) -> dict[str, Any]:
    """Every section of `statistics` but `queues`, in the documented order."""
    workers = fig.workers
    busy = sum(1 for w in workers if w.current_jobs)
    hits, misses = int(fig.cache.get("hits", 0)), int(fig.cache.get("misses", 0))
    m = fig.metrics
    return {
        "redis": {"total_jobs": fig.total_jobs, "active_workers": len(workers)},
        "workers": {
            "total": len(workers),
            "active": busy,
            "idle": len(workers) - busy,
            "list": [worker_row(w) for w in workers],
        },
        "jobs": {"total": fig.total_jobs, "by_status": fig.by_status},
        "metrics": {
            "processed": m.processed,
            "succeeded": m.succeeded,
            "failed": m.failed,
            "success_rate": m.success_rate,
            "avg_processing_ms": m.avg_processing_ms,
            "throughput_per_min": m.throughput_per_min,
        },
        "calls": {
            "active": fig.lines.active,
            "limit": fig.lines.limit,
            "by_outcome": m.by_outcome,
            # Each Asterisk server's lines, and the jobs waiting for one by priority.
            "servers": [server.as_dict() for server in fig.lines.servers],
            "waiting": fig.lines.waiting,
        },
        "tts_cache": {
            "hits": hits,
            "misses": misses,
            "hit_rate": round(hits / (hits + misses), 4) if hits + misses else 0.0,
            "entries": fig.cache_entries,
            "bytes": int(fig.cache.get("bytes", 0)),
        },
    }


async def queue_statistics(src: StatsSources, inspector: QueueInspector) -> dict[str, Any]:
    """The `statistics` object of `/queue/stats`; raises when RabbitMQ or Redis is down."""
    depths, figures = await asyncio.gather(inspector.depths(), read_redis_figures(src))
    return {"queues": depths, **redis_statistics(figures)}
